/** Small fetch helpers for tests against a real server. */
export interface Client {
  url: string;
  token: string;
  req(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  submit(body: Record<string, unknown>, version?: 1 | 2): Promise<string>;
  waitDone(id: string, timeoutMs?: number): Promise<any>;
  /** Follows `logs?follow=1` until `end`; records when each event arrived. */
  follow(id: string, query?: string, timeoutMs?: number): Promise<Array<{ event: string; data: any; at: number }>>;
}

export function client(url: string, token: string): Client {
  const c: Client = {
    url,
    token,
    async req(method, path, body, headers = {}) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async submit(body, version = 1) {
      const r = await c.req('POST', `/api/v${version}/mags-jobs`, body);
      if (r.status !== 202) throw new Error(`submit failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.request_id as string;
    },
    async waitDone(id, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const r = await c.req('GET', `/api/v1/mags-jobs/${id}/status`);
        if (r.status !== 200) throw new Error(`status failed: ${r.status} ${JSON.stringify(r.body)}`);
        if (r.body.status !== 'pending' && r.body.status !== 'running') return r.body;
        // A persistent job whose script is done stays `running` with its sandbox.
        if (r.body.persistent && r.body.status === 'running' && r.body.exit_code !== null) return r.body;
        if (Date.now() > end) throw new Error(`job ${id} still ${r.body.status} after ${timeoutMs} ms`);
        await new Promise((res) => setTimeout(res, 50));
      }
    },
    async follow(id, query = '', timeoutMs = 60_000) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), timeoutMs);
      try {
        const res = await fetch(`${url}/api/v1/mags-jobs/${id}/logs?follow=1${query}`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
        if (res.status !== 200) throw new Error(`follow failed: ${res.status} ${await res.text()}`);
        const events: Array<{ event: string; data: any; at: number }> = [];
        const decoder = new TextDecoder();
        let buf = '';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data) events.push({ event, data: JSON.parse(data), at: Date.now() });
          }
        }
        return events;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return c;
}
