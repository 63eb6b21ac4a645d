import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import type { AccessGrant, AccessOptions } from '../sandboxes/live.js';
import { AppError } from '../services/errors.js';
import type { Job } from '../storage/metadata/store.js';
import type { SshKeyRecord, SshKeyStore } from '../storage/metadata/ssh-keys.js';

const { utils } = ssh2;

/** Keys of one job that stay valid at once: a new grant revokes the oldest beyond this. */
export const SSH_KEYS_PER_JOB = 5;

/** `SHA256:<base64, no padding>` of a public key blob (what `ssh-keygen -l` prints). */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The blob of an authorized_keys line (`ssh-ed25519 AAAA... comment`). */
export function blobOf(publicKey: string): Buffer {
  return Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64');
}

export interface SshGrantOptions {
  keys: SshKeyStore;
  /** Port the gateway listens on (what clients connect to; read at each grant). */
  port: () => number;
  /** Host named in answers; absent: the host the client used for the API (without its port). */
  host?: string;
  /** The gateway's public host key (`ssh-ed25519 AAAA...`), answered so clients can pin it. */
  hostPublicKey?: () => string | undefined;
}

/**
 * The access grant for port 22: a fresh ed25519 key pair per grant. The private key goes to the
 * client in OpenSSH format (ssh, paramiko and ssh2 load it); the server keeps only the public key
 * and its fingerprint. A job keeps its newest SSH_KEYS_PER_JOB keys; older ones are revoked, and
 * all of them when the job ends (`revokeJob`).
 */
export class SshGrant implements AccessGrant {
  constructor(private readonly o: SshGrantOptions) {}

  async grant(job: Job, _port: number, opts: AccessOptions): Promise<Record<string, unknown>> {
    if (this.o.port() === 0) throw new AppError('FEATURE_NOT_AVAILABLE', 'the SSH gateway is not listening yet', 'Retry in a moment.');
    const pair = generateEd25519(`mags-${job.name ?? job.request_id}`);
    const now = new Date();
    const row: SshKeyRecord = {
      id: `sk_${now.getTime().toString(36).padStart(9, '0')}${randomBytes(6).toString('hex')}`,
      user_id: job.user_id,
      job_id: job.request_id,
      fingerprint: fingerprintOf(blobOf(pair.public)),
      public_key: pair.public.trim(),
      created_at: now.toISOString(),
      revoked_at: null,
    };
    await this.o.keys.insertSshKey(row, SSH_KEYS_PER_JOB);
    const hostKey = this.o.hostPublicKey?.();
    return {
      ssh_host: this.o.host ?? hostOnly(opts.requestHost) ?? '127.0.0.1',
      ssh_port: this.o.port(),
      ssh_private_key: pair.private,
      ssh_user: 'root',
      ...(hostKey ? { ssh_host_key: hostKey } : {}),
    };
  }

  /** Revokes every key of a job (it ended or was stopped). */
  revokeJob(jobId: string): Promise<number> {
    return this.o.keys.revokeSshKeys(jobId, new Date().toISOString());
  }
}

/** `example.com:8080` -> `example.com`, `[::1]:8080` -> `::1`. */
function hostOnly(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  const h = hostHeader.trim();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const i = h.lastIndexOf(':');
  return i > 0 && h.indexOf(':') === i ? h.slice(0, i) : h;
}

/**
 * A fresh ed25519 pair in OpenSSH format. ssh2's generator drops a leading zero byte of the 32-byte
 * public key (about 1 key in 230), which makes a key that neither ssh2 nor OpenSSH can load; such a
 * pair is made again. Every pair returned has been parsed back.
 */
export function generateEd25519(comment: string): { private: string; public: string } {
  for (let attempt = 0; ; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    const k = utils.parseKey(pair.private);
    // The blob of a good key: string "ssh-ed25519" (4 + 11) + string key (4 + 32).
    if (!(k instanceof Error) && !Array.isArray(k) && k.getPublicSSH().length === 51 && blobOf(pair.public).length === 51) return pair;
    if (attempt >= 20) throw new Error('could not generate a valid ed25519 key');
  }
}

/** The authorized_keys form (`ssh-ed25519 AAAA...`) of a private key. */
export function publicKeyOf(privateKey: string): string {
  const k = utils.parseKey(privateKey);
  if (k instanceof Error || Array.isArray(k)) throw new Error('not a single private key');
  return `${k.type} ${k.getPublicSSH().toString('base64')}`;
}

/**
 * The gateway's ed25519 host key from `path`, generated on first use (0600, directory 0700). The
 * same key across restarts keeps clients' pinned known_hosts entries valid.
 */
export async function loadHostKey(path: string): Promise<string> {
  try {
    const pem = await readFile(path, 'utf8');
    const parsed = utils.parseKey(pem);
    if (parsed instanceof Error) throw new Error(`the SSH host key ${path} cannot be read: ${parsed.message}; move it away to generate a new one`);
    await chmod(path, 0o600);
    return pem;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const pair = generateEd25519('mags-ssh-gateway');
  await writeFile(path, pair.private, { mode: 0o600, flag: 'wx' });
  await writeFile(`${path}.pub`, `${pair.public.trim()}\n`, { mode: 0o644 });
  return pair.private;
}
