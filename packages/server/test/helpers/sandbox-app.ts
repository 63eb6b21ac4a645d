/**
 * A small web app for sandboxes (python3 only, no packages): static files from /root, `/sse`
 * (three events 300 ms apart), `/bytes/<n>` (n bytes, streamed), `/headers` (the request headers as
 * JSON), `/count` (requests seen so far), `/timing` (`{"start_ns", "listen_ns"}`: when the start
 * command wrote /root/.start_ns and when the app was listening) and a WebSocket echo on any path.
 * Used by the proxy end-to-end test and bench/proxy.mjs.
 */
export const SANDBOX_APP_PY = String.raw`
import base64, hashlib, http.server, json, os, socketserver, struct, sys, threading, time
os.chdir('/root')
seen = [0]
lock = threading.Lock()
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True
    def log_message(self, *a):
        pass
    def send_body(self, code, ctype, body):
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        with lock:
            seen[0] += 1
        n = int(self.headers.get('Content-Length') or 0)
        data = self.rfile.read(n) if n else b''
        self.send_body(200, 'text/plain', b'got ' + str(len(data)).encode())
    def do_GET(self):
        with lock:
            seen[0] += 1
        if self.headers.get('Upgrade', '').lower() == 'websocket':
            return self.websocket()
        if self.path == '/timing':
            start = open('/root/.start_ns').read().strip() if os.path.exists('/root/.start_ns') else '0'
            return self.send_body(200, 'application/json', json.dumps({'start_ns': int(start), 'listen_ns': listen_ns[0]}).encode())
        if self.path == '/count':
            return self.send_body(200, 'text/plain', str(seen[0]).encode())
        if self.path == '/headers':
            return self.send_body(200, 'application/json', json.dumps({k.lower(): v for k, v in self.headers.items()}).encode())
        if self.path == '/sse':
            self.send_response(200)
            self.send_header('Content-Type', 'text/event-stream')
            self.send_header('Cache-Control', 'no-cache')
            self.send_header('Connection', 'close')
            self.end_headers()
            for i in range(3):
                self.wfile.write(('data: tick %d\n\n' % i).encode())
                self.wfile.flush()
                time.sleep(0.3)
            self.close_connection = True
            return
        if self.path.startswith('/bytes/'):
            n = int(self.path[7:])
            self.send_response(200)
            self.send_header('Content-Type', 'application/octet-stream')
            self.send_header('Content-Length', str(n))
            self.end_headers()
            chunk = b'x' * 1048576
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk if k == len(chunk) else chunk[:k])
                n -= k
            return
        return super().do_GET()
    def websocket(self):
        key = self.headers['Sec-WebSocket-Key']
        accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
        self.send_response(101)
        self.send_header('Upgrade', 'websocket')
        self.send_header('Connection', 'Upgrade')
        self.send_header('Sec-WebSocket-Accept', accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            op, n = head[0] & 15, head[1] & 127
            if n == 126:
                n = struct.unpack('>H', self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack('>Q', self.rfile.read(8))[0]
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if op == 8:
                self.wfile.write(b'\x88\x00')
                return
            out = b'echo:' + data
            self.wfile.write(bytes([0x81, len(out)]) + out)
            self.wfile.flush()
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
listen_ns = [0]
srv = S(('0.0.0.0', int(sys.argv[1]) if len(sys.argv) > 1 else 8080), H)
listen_ns[0] = time.time_ns()
srv.serve_forever()
`;

/** A job script that installs the app and an index page in /root and serves them on `port`. */
export function sandboxAppScript(port = 8080, title = 'Hello from a Mags sandbox'): string {
  const html = `<!doctype html><html><head><title>${title}</title></head><body style="font-family:sans-serif"><h1>${title}</h1><p>Served by python3 in a sandbox, through the Mags proxy.</p></body></html>`;
  return [
    `cat > /root/app.py <<'MAGS_APP_EOF'`,
    SANDBOX_APP_PY,
    'MAGS_APP_EOF',
    `cat > /root/index.html <<'MAGS_HTML_EOF'`,
    html,
    'MAGS_HTML_EOF',
    `exec python3 /root/app.py ${port}`,
  ].join('\n');
}
