import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { aliasLabelProblem, hostOfLabel, isDnsLabel } from '../proxy/hosts.js';
import type { AccessGrant, AccessOptions, LiveSandboxes } from '../sandboxes/live.js';
import { UniqueViolationError, type Job, type JobStore, type User } from '../storage/metadata/store.js';
import type { UrlRouteRecord, UrlRouteStore } from '../storage/metadata/url-routes.js';
import type { WorkspaceStore } from '../storage/metadata/workspaces.js';
import { AppError } from './errors.js';
import type { Stores } from '../storage/stores.js';
import { UsersService } from './users.js';

/** Where the URLs the server hands out point (config: MAGS_DOMAIN, MAGS_PROXY_PUBLIC_*). */
export interface UrlSettings {
  domain: string;
  scheme: 'http' | 'https';
  /** Port in handed-out URLs; read when a URL is built (the proxy may bind a free port). */
  publicPort: () => number | undefined;
  /** How long a one-time login link stays valid (default 10 minutes). */
  linkTtlMs?: number;
  /** How long the cookie a login link sets stays valid (default 12 hours). */
  sessionTtlMs?: number;
}

/** A route and the job it leads to now (none: an alias whose workspace has no running/sleeping job). */
export interface ResolvedRoute {
  route: UrlRouteRecord;
  job?: Job;
}

/** The cookie a one-time login link sets on a token-mode URL's host. */
export const URL_SESSION_COOKIE = 'mags_url_session';
/** Path on an app's host that consumes a one-time login link. */
export const URL_LOGIN_PATH = '/__mags/login';

const DEFAULT_PORT = 8080;
const ROUTE_CACHE_MS = 10_000;
const ALIAS_CACHE_MS = 2_000;

/** Alias input (`POST /api/v2/mags-url-aliases`). */
export interface AliasInput {
  subdomain: string;
  workspace_id: string;
  domain?: string;
  port?: number;
  auth?: 'public' | 'token';
}

/** An alias as the API shows it. */
export interface AliasView {
  subdomain: string;
  workspace_id: string;
  domain: string;
  port: number;
  auth: 'public' | 'token';
  url: string;
  created_at: string;
}

/**
 * Public URLs: the access grant for ports other than 22 (`AccessGrant`), URL aliases, route
 * resolution for the proxy (cached, invalidated when a job's sandbox changes) and URL auth (the
 * owner's bearer token, or a cookie from a one-time login link; both kept in this process).
 */
export class UrlService implements AccessGrant {
  private readonly cache = new Map<string, { resolved: ResolvedRoute | null; until: number }>();
  private readonly links = new Map<string, { subdomain: string; until: number }>();
  private readonly sessions = new Map<string, { subdomain: string; until: number }>();
  private unsubscribe?: () => void;

  constructor(
    private readonly routes: UrlRouteStore,
    private readonly jobs: JobStore,
    private readonly workspaceStore: WorkspaceStore,
    private readonly users: UsersService,
    private readonly settings: UrlSettings,
    private readonly log: Logger,
  ) {}

  /** Drops cached resolutions whenever a job's sandbox goes or comes back. */
  watch(live: LiveSandboxes): void {
    this.unsubscribe?.();
    this.unsubscribe = live.onChange((jobId) => this.invalidateJob(jobId));
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.cache.clear();
  }

  /** The public URL of a label. */
  urlOf(label: string): string {
    const port = this.settings.publicPort();
    const standard = port === undefined || (this.settings.scheme === 'http' && port === 80) || (this.settings.scheme === 'https' && port === 443);
    return `${this.settings.scheme}://${hostOfLabel(label, this.settings.domain)}${standard ? '' : `:${port}`}`;
  }

  /** The access grant of a port other than 22: `{url, subdomain, port, auth}` (+ a login link in token mode). */
  async grant(job: Job, port: number, opts: AccessOptions = {}): Promise<Record<string, unknown>> {
    if (!job.persistent) {
      throw new AppError('INVALID_STATE', `Job ${job.request_id} is not persistent: only persistent jobs get a public URL`, "Run it with -p/--persistent (API: \"persistent\": true).");
    }
    let route = await this.routes.getJobRoute(job.request_id, port);
    if (!route) {
      route = await this.insertJobRoute(job, port, opts.auth ?? 'public');
    } else if (opts.auth && opts.auth !== route.auth) {
      await this.routes.setAuth(route.subdomain, opts.auth);
      route = { ...route, auth: opts.auth };
      this.cache.delete(route.subdomain);
    }
    const url = this.urlOf(route.subdomain);
    await this.jobs.updateJob(job.request_id, { subdomain: route.subdomain, url });
    this.log.info({ jobId: job.request_id, subdomain: route.subdomain, port, auth: route.auth }, 'URL enabled');
    return { url, subdomain: route.subdomain, port, auth: route.auth, ...(route.auth === 'token' ? this.loginLink(route.subdomain) : {}) };
  }

  private async insertJobRoute(job: Job, port: number, auth: UrlRouteRecord['auth']): Promise<UrlRouteRecord> {
    for (let attempt = 0; ; attempt++) {
      const row: UrlRouteRecord = {
        subdomain: randomBytes(6).toString('hex'),
        user_id: job.user_id,
        kind: 'job',
        job_id: job.request_id,
        workspace_id: null,
        port,
        auth,
        created_at: new Date().toISOString(),
      };
      try {
        await this.routes.insertRoute(row);
        this.cache.delete(row.subdomain);
        return row;
      } catch (err) {
        if (!(err instanceof UniqueViolationError) || attempt >= 4) throw err;
        // Either the random label collided, or a concurrent grant made this job's route first.
        const made = await this.routes.getJobRoute(job.request_id, port);
        if (made) return made;
      }
    }
  }

  /** Creates an alias `<subdomain>.apps.<domain>` for the newest running/sleeping job of a workspace. */
  async createAlias(user: User, input: AliasInput): Promise<AliasView> {
    const label = input.subdomain.toLowerCase();
    const problem = aliasLabelProblem(label);
    if (problem) throw new AppError('VALIDATION_ERROR', `subdomain "${clip(input.subdomain)}" cannot be used: ${problem}`);
    const domain = this.checkDomain(input.domain);
    if (input.workspace_id === '' || input.workspace_id.includes('\u0000')) throw new AppError('VALIDATION_ERROR', 'workspace_id must be a workspace name without NUL characters');
    const port = input.port ?? DEFAULT_PORT;
    const ws = await this.workspaceStore.getWorkspace(user.id, input.workspace_id);
    if (!ws) {
      const job = await this.jobs.findWorkspaceJob(user.id, input.workspace_id, ['pending', 'running', 'sleeping', 'completed', 'error']);
      if (!job) {
        throw new AppError('WORKSPACE_NOT_FOUND', `No workspace of yours is named "${clip(input.workspace_id)}"`, 'Create it with mags run -w <name> -p ...; list yours with mags workspace list.');
      }
    }
    const row: UrlRouteRecord = {
      subdomain: label,
      user_id: user.id,
      kind: 'alias',
      job_id: null,
      workspace_id: input.workspace_id,
      port,
      auth: input.auth ?? 'public',
      created_at: new Date().toISOString(),
    };
    try {
      await this.routes.insertRoute(row);
    } catch (err) {
      if (err instanceof UniqueViolationError) {
        throw new AppError('CONFLICT', `subdomain "${label}" is already in use`, 'Pick another subdomain; list yours with mags url alias list.');
      }
      throw err;
    }
    this.cache.delete(label);
    this.log.info({ subdomain: label, workspaceId: input.workspace_id, port }, 'URL alias created');
    return this.view(row, domain);
  }

  async listAliases(user: User): Promise<AliasView[]> {
    return (await this.routes.listAliases(user.id)).map((r) => this.view(r));
  }

  async deleteAlias(user: User, subdomain: string): Promise<void> {
    const label = subdomain.toLowerCase();
    if (!isDnsLabel(label) || !(await this.routes.deleteAlias(user.id, label))) {
      throw new AppError('URL_ALIAS_NOT_FOUND', `No URL alias of yours has subdomain "${clip(subdomain)}"`, 'List yours with mags url alias list.');
    }
    this.cache.delete(label);
  }

  /**
   * The route of a label and the job it leads to now; null for an unknown label. Cached for a few
   * seconds (aliases shorter) and dropped when the job's sandbox changes.
   */
  async resolve(label: string): Promise<ResolvedRoute | null> {
    const now = Date.now();
    const hit = this.cache.get(label);
    if (hit && hit.until > now) return hit.resolved;
    const route = await this.routes.getRoute(label);
    let resolved: ResolvedRoute | null = null;
    if (route) {
      let job: Job | undefined;
      if (route.kind === 'job') {
        job = await this.jobs.getJob(route.job_id!);
      } else {
        job = await this.jobs.findWorkspaceJob(route.user_id, route.workspace_id!, ['running', 'sleeping']);
      }
      resolved = { route, job };
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(label, { resolved, until: now + (route?.kind === 'job' ? ROUTE_CACHE_MS : ALIAS_CACHE_MS) });
    return resolved;
  }

  private invalidateJob(jobId: string): void {
    for (const [label, entry] of this.cache) {
      if (!entry.resolved || entry.resolved.route.kind === 'alias' || entry.resolved.job?.request_id === jobId) this.cache.delete(label);
    }
  }

  /**
   * Whether a request may use a token-mode route: `ok`, or the error code to answer. The owner's
   * API token as a bearer header, or a session cookie from a login link of this very host.
   */
  async authorize(route: UrlRouteRecord, authorization: string | undefined, cookie: string | undefined): Promise<'ok' | 'AUTH_REQUIRED' | 'INVALID_TOKEN' | 'FORBIDDEN'> {
    if (route.auth === 'public') return 'ok';
    const session = cookieValue(cookie, URL_SESSION_COOKIE);
    if (session) {
      const s = this.sessions.get(session);
      if (s && s.subdomain === route.subdomain && s.until > Date.now()) return 'ok';
    }
    if (!authorization) return 'AUTH_REQUIRED';
    let user: User;
    try {
      user = await this.users.authenticate(authorization);
    } catch (err) {
      if (err instanceof AppError && (err.code === 'INVALID_TOKEN' || err.code === 'AUTH_REQUIRED')) return err.code;
      throw err;
    }
    return user.id === route.user_id ? 'ok' : 'FORBIDDEN';
  }

  /** A one-time login link for a token-mode URL: `{login_url, login_url_expires_at}`. */
  loginLink(subdomain: string): { login_url: string; login_url_expires_at: string } {
    this.sweep();
    const token = randomBytes(24).toString('base64url');
    const until = Date.now() + (this.settings.linkTtlMs ?? 10 * 60_000);
    this.links.set(token, { subdomain, until });
    return { login_url: `${this.urlOf(subdomain)}${URL_LOGIN_PATH}?token=${token}`, login_url_expires_at: new Date(until).toISOString() };
  }

  /**
   * Uses up a login link of this subdomain: the session id to set as the cookie, and its lifetime
   * in seconds; null for an unknown, used, expired or other host's link.
   */
  consumeLink(subdomain: string, token: string): { session: string; maxAgeSeconds: number } | null {
    const link = this.links.get(token);
    if (!link || !safeEqual(link.subdomain, subdomain) || link.until <= Date.now()) return null;
    this.links.delete(token);
    const session = randomBytes(24).toString('base64url');
    const ttl = this.settings.sessionTtlMs ?? 12 * 3600_000;
    this.sessions.set(session, { subdomain, until: Date.now() + ttl });
    return { session, maxAgeSeconds: Math.floor(ttl / 1000) };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, v] of this.links) if (v.until <= now) this.links.delete(k);
    for (const [k, v] of this.sessions) if (v.until <= now) this.sessions.delete(k);
  }

  private checkDomain(domain: string | undefined): string {
    const ours = this.settings.domain;
    if (domain === undefined || domain === '' || domain === ours || domain === `apps.${ours}`) return ours;
    throw new AppError('VALIDATION_ERROR', `domain "${clip(domain)}" is not served here: this server's URLs are under apps.${ours}`, 'Leave out domain (or send apps.' + ours + ').');
  }

  private view(r: UrlRouteRecord, domain = this.settings.domain): AliasView {
    return { subdomain: r.subdomain, workspace_id: r.workspace_id!, domain: `apps.${domain}`, port: r.port, auth: r.auth, url: this.urlOf(r.subdomain), created_at: r.created_at };
  }
}

/** A UrlService on the stores of one metadata database. */
export function createUrlService(stores: Pick<Stores, 'urlRoutes' | 'jobs' | 'workspaces' | 'users'>, settings: UrlSettings, log: Logger): UrlService {
  return new UrlService(stores.urlRoutes, stores.jobs, stores.workspaces, new UsersService(stores.users, log), settings, log);
}

/** One cookie's value from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function clip(s: string): string {
  return s.length > 80 ? s.slice(0, 80) + '...' : s;
}
