/** Printing a job's raw output: stdout bytes to stdout, stderr bytes to stderr, exactly as written. */
import { MagsError, type LogEnd, type Mags } from '@mags/sdk';
import { isTruncationNotice } from './job-view.js';

export interface RawPrintOptions {
  follow: boolean;
  signal?: AbortSignal;
  /** Print platform (`system`) lines on stderr as `[mags] ...`. */
  system: boolean;
  /** Called before the first output (e.g. to stop a spinner). */
  onFirst?: () => void;
}

/** What printing saw: how the job ended (when followed to its end) and whether its output was cut. */
export interface RawPrinted {
  end: LogEnd | null;
  truncated: boolean;
}

/**
 * Prints a job's output bytes; null when the server has no raw form (a Mags server: the caller
 * prints lines instead). Waits for the terminal between writes, so a slow pipe slows the reads.
 */
export async function printRaw(mags: Mags, id: string, opts: RawPrintOptions): Promise<RawPrinted | null> {
  const printed: RawPrinted = { end: null, truncated: false };
  let first = true;
  try {
    for await (const item of mags.streamRaw(id, { follow: opts.follow, signal: opts.signal })) {
      if (first) {
        first = false;
        opts.onFirst?.();
      }
      if ('end' in item) {
        printed.end = item.end;
        break;
      }
      if (item.stream === 'stdout') await write(process.stdout, item.data);
      else if (item.stream === 'stderr') await write(process.stderr, item.data);
      else {
        for (const message of Buffer.from(item.data).toString('utf8').split('\n')) {
          if (message === '') continue;
          if (isTruncationNotice({ stream: 'system', message } as never)) {
            // Announced whatever the flags: output was lost, which a script's exit code alone hides.
            printed.truncated = true;
            await write(process.stderr, Buffer.from(`[mags] ${message}\n`));
          } else if (opts.system) await write(process.stderr, Buffer.from(`[mags] ${message}\n`));
        }
      }
    }
  } catch (err) {
    if (first && err instanceof MagsError && err.code === 'FEATURE_NOT_AVAILABLE') return null;
    throw err;
  }
  return printed;
}

function write(stream: NodeJS.WriteStream, data: Uint8Array): Promise<void> {
  if (data.length === 0 || stream.write(data)) return Promise.resolve();
  return new Promise((resolve) => stream.once('drain', resolve));
}
