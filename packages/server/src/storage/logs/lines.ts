/**
 * How a stream's bytes are cut into lines, the same for the writer (services/job-logs.ts, which
 * numbers lines as bytes arrive) and the reader (kysely-log-store.ts, which cuts stored chunks):
 * a line ends at a newline, or after MAX_LINE_BYTES bytes without one (backed off to a UTF-8
 * character boundary), or at the end of the stream. The decision for a line depends only on its
 * first MAX_LINE_BYTES + 1 bytes, so cutting bytes as they arrive and cutting them whole agree.
 */

/** Longest line; longer runs without a newline are cut into lines of this size. */
export const MAX_LINE_BYTES = 64 * 1024;

/** The next line of `buf` from `start`: its content is [start, end), the following one starts at `next`; null = not complete yet. */
export function nextLine(buf: Buffer, start: number, final: boolean, max = MAX_LINE_BYTES): { end: number; next: number } | null {
  const nl = buf.indexOf(10, start);
  if (nl >= 0 && nl - start <= max) return { end: nl, next: nl + 1 };
  if (buf.length - start > max) {
    let cut = start + max;
    // Never split a UTF-8 sequence: step back over up to 3 continuation bytes.
    for (let i = 0; i < 3 && (buf[cut]! & 0xc0) === 0x80; i++) cut--;
    return { end: cut, next: cut };
  }
  if (final && buf.length > start) return { end: buf.length, next: buf.length };
  return null;
}
