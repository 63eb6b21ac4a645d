import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver got. */
export interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
  path: string;
}

/** A webhook receiver on loopback: records every request and answers with `respond` (default 200). */
export interface Receiver {
  url: string;
  port: number;
  got: Received[];
  respond: (req: Received, res: ServerResponse) => void;
  /** Resolves once `n` requests arrived (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(host = '127.0.0.1'): Promise<Receiver> {
  const r: Partial<Receiver> & { got: Received[] } = { got: [] };
  const waiters: Array<() => void> = [];
  r.respond = (_req, res) => res.writeHead(200).end('ok');
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: Received = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), path: req.url ?? '/' };
      r.got.push(rec);
      for (const w of waiters.splice(0)) w();
      r.respond!(rec, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  r.port = port;
  r.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/hook`;
  r.waitFor = async (n, timeoutMs = 15_000) => {
    const end = Date.now() + timeoutMs;
    while (r.got.length < n) {
      if (Date.now() > end) throw new Error(`receiver got ${r.got.length} of ${n} requests in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return r.got;
  };
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r as Receiver;
}
