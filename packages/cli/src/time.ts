/** Times on the command line: `--since 1h` style arguments and "3 min ago" in tables. */

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30s`, `10m`, `1h`, `2d`, `1w` back from `now`, or an ISO date/time; null when neither. */
export function parseSince(value: string, now = Date.now()): Date | null {
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(value.trim());
  if (m) return new Date(now - Number(m[1]) * UNITS[m[2]!]!);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago" (a future time reads "in ..."). */
export function relativeTime(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = now - t;
  const abs = Math.abs(diff);
  const fmt = (n: number, unit: string) => (diff >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`);
  if (abs < 5000) return 'just now';
  if (abs < 60_000) return fmt(Math.floor(abs / 1000), 's');
  if (abs < 3_600_000) return fmt(Math.floor(abs / 60_000), 'min');
  if (abs < 86_400_000) return fmt(Math.floor(abs / 3_600_000), 'h');
  return fmt(Math.floor(abs / 86_400_000), 'd');
}
