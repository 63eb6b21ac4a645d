/**
 * A public URL: `<subdomain>.apps.<domain>` routed to a port of a persistent job (kind `job`, made
 * by an access call) or of the newest running/sleeping job of a workspace (kind `alias`).
 * Subdomains are unique across all users.
 */
export interface UrlRouteRecord {
  subdomain: string;
  user_id: string;
  kind: 'job' | 'alias';
  /** The job a `job` route belongs to; null for aliases. */
  job_id: string | null;
  /** The workspace an alias follows; null for job routes. */
  workspace_id: string | null;
  /** Port inside the sandbox. */
  port: number;
  /** `public` (anyone) or `token` (the owner's API token or a cookie from a one-time link). */
  auth: 'public' | 'token';
  created_at: string;
}

/** URL route rows. `KyselyUrlRouteStore` implements it on SQLite and PostgreSQL. */
export interface UrlRouteStore {
  /** Inserts a route; throws UniqueViolationError when the subdomain (or the job's port) is taken. */
  insertRoute(row: UrlRouteRecord): Promise<void>;
  getRoute(subdomain: string): Promise<UrlRouteRecord | undefined>;
  /** The `job` route of this job and port. */
  getJobRoute(jobId: string, port: number): Promise<UrlRouteRecord | undefined>;
  /** Sets the auth mode of a route. */
  setAuth(subdomain: string, auth: UrlRouteRecord['auth']): Promise<void>;
  /** The user's aliases, oldest first. */
  listAliases(userId: string): Promise<UrlRouteRecord[]>;
  /** Removes one alias of this user; false when the user has no such alias. */
  deleteAlias(userId: string, subdomain: string): Promise<boolean>;
}
