/** A minimal Server-Sent Events reader over a fetch `Response` body. */

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Thrown when a stream sends nothing (not even a keep-alive comment) for `idleMs`. */
export class StreamStalledError extends Error {
  override name = 'StreamStalledError';
}

/**
 * Yields the events of an SSE body in order; ends when the server closes the stream. With `idleMs`,
 * a stream silent for that long (our server sends a keep-alive comment every 15 s) throws
 * `StreamStalledError`, so a dead connection is noticed.
 */
export async function* readSse(body: ReadableStream<Uint8Array>, opts: { idleMs?: number } = {}): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  try {
    for (;;) {
      const { value, done } = await readWithin(reader, opts.idleMs);
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (data.length) yield { event: event || 'message', data: data.join('\n'), ...(id ? { id } : {}) };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id') id = val;
      }
    }
  } finally {
    // Cancelling through the reader also settles a read still pending after a stall.
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleMs: number | undefined,
): Promise<Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>> {
  if (!idleMs) return reader.read();
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      reader.read(),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new StreamStalledError(`no data for ${idleMs} ms`)), idleMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
