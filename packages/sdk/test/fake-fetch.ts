/** An in-process `fetch` for request-shape tests: records each request and answers from a script. */
export interface RecordedRequest {
  method: string;
  url: URL;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
}

export type Responder = (req: RecordedRequest) => Response | Promise<Response>;

export function fakeFetch(responder: Responder): { fetch: typeof fetch; requests: RecordedRequest[] } {
  const requests: RecordedRequest[] = [];
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    const raw = init?.body;
    const req: RecordedRequest = {
      method: init?.method ?? 'GET',
      url,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: typeof raw === 'string' ? JSON.parse(raw) : undefined,
    };
    requests.push(req);
    if (init?.signal?.aborted) throw init.signal.reason;
    return responder(req);
  };
  return { fetch: f as typeof fetch, requests };
}

export function json(status: number, body: unknown): Response {
  return new Response(typeof body === 'string' ? body : JSON.stringify(body), {
    status,
    headers: { 'content-type': typeof body === 'string' ? 'text/html' : 'application/json' },
  });
}

/** An SSE answer whose events are written with `gapMs` between them. */
export function sse(events: { event: string; data: unknown }[], gapMs = 0): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(enc.encode(': hello\n\n'));
      for (const e of events) {
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        controller.enqueue(enc.encode(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`));
      }
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream; charset=utf-8' } });
}
