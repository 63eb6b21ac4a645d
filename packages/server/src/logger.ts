import { destination, pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';
import type { LogLevelName } from './config.js';

export type { Logger } from 'pino';

/**
 * The server's root logger: structured JSON lines on stderr (stdout carries only the ready line).
 * When stderr is a terminal (someone runs `mags server` by hand) the lines are printed readably
 * instead: time, level, component, message, then the other fields as key=value (`pretty`).
 * Components get children (`log.child({ component: 'scheduler' })`), never a global.
 */
export function createLogger(level: LogLevelName, opts: { pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? process.stderr.isTTY === true;
  const sink = destination({ fd: 2, sync: true });
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pretty ? prettyStream(sink, process.env.NO_COLOR === undefined) : sink,
  );
}

/** A logger that drops everything (tests, spec generation). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const COLORS: Record<string, string> = { trace: '90', debug: '36', info: '32', warn: '33', error: '31', fatal: '35' };
/** Fields every line has or that the readable form shows in its own place. */
const SHOWN = new Set(['level', 'time', 'pid', 'msg', 'component', 'hostname']);

/** Turns one JSON log line into `12:00:01.234 INFO  [scheduler] job ended jobId=... status=completed`. */
export function prettyLine(json: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json; // not one of pino's lines: print it as it came
  }
  const level = String(rec.level ?? 'info');
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 23) : '';
  const paint = (code: string | undefined, s: string) => (color && code ? `\x1b[${code}m${s}\x1b[0m` : s);
  const head = `${paint('90', time)} ${paint(COLORS[level], level.toUpperCase().padEnd(5))}`;
  const component = rec.component ? ` ${paint('90', `[${String(rec.component)}]`)}` : '';
  let rest = '';
  let stack = '';
  for (const [k, v] of Object.entries(rec)) {
    if (SHOWN.has(k) || v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { message?: string; stack?: string };
      rest += ` err=${JSON.stringify(e.message ?? '')}`;
      if (e.stack) stack = '\n' + e.stack.split('\n').map((l) => '    ' + l).join('\n');
      continue;
    }
    rest += ` ${k}=${typeof v === 'string' && /^[\w.:/@-]*$/.test(v) ? v : JSON.stringify(v)}`;
  }
  return `${head}${component} ${String(rec.msg ?? '')}${paint('90', rest)}${stack}`;
}

function prettyStream(sink: DestinationStream, color: boolean): DestinationStream {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) sink.write(prettyLine(line, color) + '\n');
    },
  };
}
