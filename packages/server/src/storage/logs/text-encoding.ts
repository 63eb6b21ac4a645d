/**
 * How a log line's text was kept in the `text` column of `job_logs`, the one-row-per-line table
 * before output was stored as byte chunks: migration 006 decodes it when it converts old rows, and
 * the store conformance suite writes such rows. The old scheme: PostgreSQL text cannot hold U+0000, and
 * neither database keeps a lone UTF-16 surrogate (both store UTF-8, which has no encoding for one),
 * so a line with either is stored escaped and flagged: `\` becomes `\\`, NUL becomes `\0` and a
 * lone surrogate becomes `\uXXXX` (lower-case hex). Every other line, almost all of them, is stored
 * as is, so the table stays readable and searchable with plain SQL. (bytea/BLOB would need a
 * dialect-specific column type, would make every line opaque to SQL, and still could not hold a
 * lone surrogate as UTF-8.)
 */

/** String.prototype.isWellFormed of Node 20 (native: ~20x faster than a regex scan; not in this project's TS lib). */
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
/** What an escaped text escapes: a backslash, NUL, or a surrogate that is not half of a pair (no `u` flag: the regex works on UTF-16 units). */
const TO_ESCAPE = /\\|\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ESCAPE = /\\(\\|0|u[0-9a-f]{4})/g;

/** The text to store and whether it is escaped. */
export function encodeLogText(message: string): { text: string; escaped: boolean } {
  if (!message.includes('\0') && isWellFormed(message)) return { text: message, escaped: false };
  const text = message.replace(TO_ESCAPE, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\0') return '\\0';
    return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
  });
  return { text, escaped: true };
}

/** The original message of a stored text. */
export function decodeLogText(text: string, escaped: boolean): string {
  if (!escaped) return text;
  return text.replace(ESCAPE, (_, e: string) => {
    if (e === '\\') return '\\';
    if (e === '0') return '\0';
    return String.fromCharCode(parseInt(e.slice(1), 16));
  });
}
