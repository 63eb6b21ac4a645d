/**
 * Host names of public URLs: `<label>.apps.<domain>[:port]`, where the label is a job URL's
 * 12-hex subdomain or a user's alias. Pure functions, shared by the URL service and the proxy.
 */

/** Labels nobody may take as an alias (they name services or read as ours). */
export const RESERVED_LABELS: ReadonlySet<string> = new Set([
  'www', 'api', 'app', 'apps', 'admin', 'mail', 'smtp', 'ftp', 'ssh', 'mags', 'proxy', 'status',
  'dashboard', 'console', 'docs', 'auth', 'login', 'static', 'cdn', 'ns', 'ns1', 'ns2', 'localhost',
]);

/** Whether `s` is a lowercase DNS label (RFC 1123: a-z, 0-9, inner hyphens, 1 to 63 characters). */
export function isDnsLabel(s: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(s);
}

/** Whether `s` has the shape of a job URL's generated subdomain (12 lowercase hex digits). */
export function isJobSubdomain(s: string): boolean {
  return /^[0-9a-f]{12}$/.test(s);
}

/**
 * Why an alias label is refused, or null when it may be used: DNS label syntax, not reserved, and
 * not of the generated 12-hex shape (those belong to job URLs).
 */
export function aliasLabelProblem(label: string): string | null {
  if (!isDnsLabel(label)) return 'use 1 to 63 lowercase letters, digits and inner hyphens (a DNS label)';
  if (RESERVED_LABELS.has(label)) return 'it is reserved';
  if (isJobSubdomain(label)) return '12 hex digits are the shape of generated job URLs; pick another name';
  return null;
}

/**
 * The label of a request's Host header under `apps.<domain>`, or an outcome saying why there is
 * none: `bad` for a header that is not a host name (hostile input), `foreign` for a well-formed
 * host outside the apps domain.
 */
export function labelOfHost(host: string | undefined, domain: string): { label: string } | { bad: string } | { foreign: true } {
  if (host === undefined || host === '') return { bad: 'the request has no Host header' };
  if (host.length > 300) return { bad: 'the Host header is too long' };
  const m = /^([a-zA-Z0-9.-]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return { bad: 'the Host header is not a host name' };
  if (m[2] !== undefined && Number(m[2]) > 65535) return { bad: 'the Host header has an invalid port' };
  const name = m[1]!.toLowerCase().replace(/\.$/, '');
  const suffix = `.apps.${domain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return { foreign: true };
  const label = name.slice(0, -suffix.length);
  if (!isDnsLabel(label)) return { foreign: true };
  return { label };
}

/** The public host name of a label. */
export function hostOfLabel(label: string, domain: string): string {
  return `${label}.apps.${domain}`;
}
