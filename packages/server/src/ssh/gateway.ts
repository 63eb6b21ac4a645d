import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Logger } from 'pino';
import ssh2, { type AuthContext, type Connection } from 'ssh2';
import type { LiveAttachment, LiveSandboxes } from '../sandboxes/live.js';
import { attachJob } from '../services/exec.js';
import type { JobStore, Job } from '../storage/metadata/store.js';
import type { SshKeyRecord, SshKeyStore } from '../storage/metadata/ssh-keys.js';
import { fingerprintOf } from './keys.js';
import { serveSession, serveForward, type ConnectionContext } from './session.js';

const { Server, utils } = ssh2;

export interface SshGatewayLimits {
  /** Open connections one user may hold across all their jobs. */
  maxConnectionsPerUser: number;
  /** Open connections one key may hold. */
  maxConnectionsPerKey: number;
  /** Authentication attempts a connection gets before it is closed. */
  maxAuthAttempts: number;
  /** A connection that moves no bytes for this long is closed (0: never). */
  idleTimeoutMs: number;
  /** A connection must authenticate within this time. */
  loginGraceMs: number;
}

/** Open TCP connections the gateway accepts at once (authenticated or not). */
const MAX_CONNECTIONS = 4096;

export const DEFAULT_SSH_LIMITS: SshGatewayLimits = {
  maxConnectionsPerUser: 64,
  maxConnectionsPerKey: 32,
  maxAuthAttempts: 6,
  idleTimeoutMs: 3_600_000,
  loginGraceMs: 30_000,
};

export interface SshGatewayOptions {
  keys: SshKeyStore;
  jobs: JobStore;
  live: LiveSandboxes;
  /** The host key (OpenSSH or PEM private key), e.g. from loadHostKey(). */
  hostKey: string;
  log: Logger;
  limits?: Partial<SshGatewayLimits>;
}

/**
 * The SSH gateway role (docs/ssh.md): public-key auth only, each key granted for one job by the
 * access endpoint; the login user is `root` (or the job's name or request id, which must then be
 * the key's job). A connection attaches to the job (waking it) and holds the attachment until it
 * closes, so the sandbox does not freeze or sleep under an open session.
 */
export class SshGateway {
  private readonly server: InstanceType<typeof Server>;
  private readonly limits: SshGatewayLimits;
  private readonly perUser = new Map<string, number>();
  private readonly perKey = new Map<string, number>();
  private readonly clients = new Set<Connection>();
  /** Sockets whose client authenticated (the rest are cut off after the login grace time). */
  private readonly authenticated = new WeakSet<Socket>();

  constructor(private readonly o: SshGatewayOptions) {
    this.limits = { ...DEFAULT_SSH_LIMITS, ...o.limits };
    this.server = new Server({ hostKeys: [o.hostKey], ident: 'mags-ssh-gateway' }, (client, info) => this.onClient(client, info.ip));
    this.server.on('error', (err: Error) => o.log.error({ err }, 'SSH gateway listener error'));
    this.server.maxConnections = MAX_CONNECTIONS;
    // ssh2 reports a connection only after the key exchange: a client that never speaks, or stops
    // halfway, is cut off at the socket after the login grace time.
    const tcp = (this.server as unknown as { _srv: NetServer })._srv;
    tcp.on('connection', (socket: Socket) => {
      const grace = setTimeout(() => {
        if (!this.authenticated.has(socket)) socket.destroy();
      }, this.limits.loginGraceMs);
      socket.once('close', () => clearTimeout(grace));
    });
  }

  /** Starts listening; resolves with the bound port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops accepting, ends every connection (their attachments are released). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.clients) c.end();
    await closed;
  }

  /** Open connections (for tests and metrics). */
  get connections(): number {
    return this.clients.size;
  }

  private onClient(client: Connection, ip: string): void {
    const log = this.o.log.child({ component: 'ssh', ip });
    this.clients.add(client);
    let attempts = 0;
    let authed: { key: SshKeyRecord; job: Job } | undefined;
    let counted = false;
    let attachment: Promise<LiveAttachment> | undefined;
    let idle: NodeJS.Timeout | undefined;

    const activity = () => {
      if (this.limits.idleTimeoutMs <= 0) return;
      if (idle) idle.refresh();
      else
        idle = setTimeout(() => {
          log.info({ jobId: authed?.job.request_id }, 'SSH connection idle; closing it');
          client.end();
        }, this.limits.idleTimeoutMs);
    };

    client.on('authentication', (ctx: AuthContext) => {
      attempts++;
      if (attempts > this.limits.maxAuthAttempts) {
        ctx.reject([]);
        client.end();
        return;
      }
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      this.authenticate(ctx, log).then(
        (ok) => {
          if (!ok) return ctx.reject(['publickey']);
          if (ctx.signature === undefined) return ctx.accept(); // the key would do: the client signs next
          if (!this.admit(ok.key)) {
            log.warn({ jobId: ok.job.request_id, userId: ok.key.user_id }, 'SSH connection limit reached');
            ctx.reject([]);
            client.end();
            return;
          }
          authed = ok;
          counted = true;
          ctx.accept();
        },
        (err: Error) => {
          log.error({ err }, 'SSH authentication failed with an error');
          ctx.reject(['publickey']);
        },
      );
    });

    client.on('ready', () => {
      const sock = (client as unknown as { _sock?: Socket })._sock;
      if (sock) this.authenticated.add(sock);
      const a = authed!;
      log.info({ jobId: a.job.request_id, key: a.key.id }, 'SSH client authenticated');
      attachment = attachJob(this.o.live, a.job, 'ssh');
      // Sessions report a failed wake to the client; this keeps the rejection from going unhandled.
      attachment.catch((err: Error) => log.warn({ err, jobId: a.job.request_id }, 'SSH connection could not attach to its job'));
      activity();
      const ctx: ConnectionContext = { attachment: attachment!, activity, log: log.child({ jobId: a.job.request_id }) };
      client.on('session', (accept) => serveSession(accept(), ctx));
      client.on('tcpip', (accept, reject, info) => serveForward(accept, reject, info, ctx));
      client.on('request', (accept, reject) => reject?.()); // no remote forwards (-R)
    });

    client.on('error', (err: Error) => log.debug({ err }, 'SSH client connection error'));
    client.on('close', () => {
      if (idle) clearTimeout(idle);
      this.clients.delete(client);
      if (counted && authed) this.leave(authed.key);
      attachment?.then(
        (a) => a.release(),
        () => undefined, // already logged above
      );
    });
  }

  /** The key's record and job when the key is granted, active and offered for its own job. */
  private async authenticate(ctx: AuthContext & { method: 'publickey' }, log: Logger): Promise<{ key: SshKeyRecord; job: Job } | undefined> {
    const fp = fingerprintOf(ctx.key.data);
    const key = await this.o.keys.findSshKey(fp);
    if (!key) {
      log.info({ fingerprint: fp }, 'SSH key unknown');
      return undefined;
    }
    if (key.revoked_at) {
      log.info({ fingerprint: fp, key: key.id }, 'SSH key revoked');
      return undefined;
    }
    const job = await this.o.jobs.getJob(key.job_id);
    if (!job || job.user_id !== key.user_id) return undefined;
    if (this.o.live.state(job.request_id) === 'ended') {
      log.info({ key: key.id, jobId: job.request_id }, 'SSH key of a job that ended');
      return undefined;
    }
    if (!userMatches(ctx.username, job)) {
      log.info({ key: key.id, username: ctx.username.slice(0, 100) }, 'SSH key offered for another job');
      return undefined;
    }
    if (ctx.signature !== undefined) {
      const pub = utils.parseKey(key.public_key);
      if (pub instanceof Error || Array.isArray(pub)) return undefined;
      if (!sameBytes(pub.getPublicSSH(), ctx.key.data)) return undefined;
      if (!ctx.blob || pub.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
        log.info({ key: key.id }, 'SSH signature does not verify');
        return undefined;
      }
    }
    return { key, job };
  }

  private admit(key: SshKeyRecord): boolean {
    const u = this.perUser.get(key.user_id) ?? 0;
    const k = this.perKey.get(key.id) ?? 0;
    if (u >= this.limits.maxConnectionsPerUser || k >= this.limits.maxConnectionsPerKey) return false;
    this.perUser.set(key.user_id, u + 1);
    this.perKey.set(key.id, k + 1);
    return true;
  }

  private leave(key: SshKeyRecord): void {
    const dec = (m: Map<string, number>, id: string) => {
      const n = (m.get(id) ?? 1) - 1;
      if (n <= 0) m.delete(id);
      else m.set(id, n);
    };
    dec(this.perUser, key.user_id);
    dec(this.perKey, key.id);
  }
}

/** `root` logs in to the key's job; any other user name must be that job's name or request id. */
function userMatches(username: string, job: Job): boolean {
  return username === 'root' || username === job.request_id || (job.name !== null && username === job.name);
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
