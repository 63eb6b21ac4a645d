import { FitAddon } from '@xterm/addon-fit';
import { Terminal as XTerm } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState } from 'react';
import { api, ApiError } from '../api';
import { ErrorBox, Unavailable } from '../ui';

/** A shell in the job's sandbox: xterm.js over the terminal WebSocket, resized with the element. */
export default function Terminal({ id }: { id: string }) {
  const el = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('Connecting…');

  useEffect(() => {
    let ws: WebSocket | undefined;
    let disposed = false;
    const term = new XTerm({ cursorBlink: true, fontSize: 13, convertEol: false, theme: { background: '#000000' } });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el.current!);
    fit.fit();
    const sendSize = () => {
      if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
    };
    const observer = new ResizeObserver(() => {
      fit.fit();
      sendSize();
    });
    observer.observe(el.current!);
    const enc = new TextEncoder();
    const input = term.onData((d) => {
      if (ws?.readyState === WebSocket.OPEN) ws.send(enc.encode(d));
    });

    (async () => {
      try {
        const { ticket } = await api<{ ticket: string }>('POST', `/api/v1/mags-jobs/${encodeURIComponent(id)}/terminal-ticket`);
        if (disposed) return;
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        const q = new URLSearchParams({ ticket, cols: String(term.cols), rows: String(term.rows) });
        ws = new WebSocket(`${proto}//${location.host}/api/v1/mags-jobs/${encodeURIComponent(id)}/terminal?${q}`);
        ws.binaryType = 'arraybuffer';
        ws.onopen = () => {
          setStatus('Connected: a shell in the sandbox.');
          sendSize();
          term.focus();
        };
        ws.onmessage = (ev) => {
          if (ev.data instanceof ArrayBuffer) return term.write(new Uint8Array(ev.data));
          // Text frames are JSON control messages: the shell's exit, or an error.
          let msg: { type?: string; exit_code?: number | null; signal?: number | null; error?: string };
          try {
            msg = JSON.parse(String(ev.data)) as typeof msg;
          } catch {
            msg = { type: 'error', error: String(ev.data) };
          }
          if (msg.type === 'exit') setStatus(`The shell exited${msg.exit_code !== null && msg.exit_code !== undefined ? ` with code ${msg.exit_code}` : ''}. Reload the page for a new one.`);
          else if (msg.type === 'error') setStatus(`Terminal error: ${msg.error ?? 'unknown'}`);
        };
        ws.onclose = (ev) => setStatus(`Disconnected${ev.reason ? `: ${ev.reason}` : ''}. Reload the page to reconnect.`);
      } catch (err) {
        setError(err);
      }
    })();

    return () => {
      disposed = true;
      input.dispose();
      observer.disconnect();
      ws?.close();
      term.dispose();
    };
  }, [id]);

  if (error instanceof ApiError && error.unavailable) return <Unavailable feature="The web terminal" error={error} />;
  return (
    <>
      {error !== null && <ErrorBox error={error} />}
      <p className="sub" role="status" style={{ margin: '0 0 8px' }}>{status}</p>
      <div className="term" ref={el} data-testid="terminal" />
    </>
  );
}
