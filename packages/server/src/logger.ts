import { destination, pino, stdTimeFunctions, type Logger } from 'pino';
import type { LogLevelName } from './config.js';

export type { Logger } from 'pino';

/**
 * The server's root logger: structured JSON lines on stderr (stdout carries only the ready line).
 * Components get children (`log.child({ component: 'scheduler' })`), never a global.
 */
export function createLogger(level: LogLevelName): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything (tests, spec generation). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
