import { join } from 'node:path';
import type { Logger } from 'pino';
import type { LiveSandboxes } from '../sandboxes/live.js';
import type { JobStore } from '../storage/metadata/store.js';
import type { SshKeyStore } from '../storage/metadata/ssh-keys.js';
import { SshGateway, type SshGatewayLimits } from './gateway.js';
import { SshGrant, loadHostKey, publicKeyOf } from './keys.js';

/** Where the gateway's host key lives under the data dir. */
export function hostKeyPath(dataDir: string): string {
  return join(dataDir, 'ssh', 'host_ed25519_key');
}

export interface SshRoleOptions {
  keys: SshKeyStore;
  jobs: JobStore;
  dataDir: string;
  log: Logger;
  /** Host named in access answers (absent: the host the client used for the API). */
  publicHost?: string;
  limits?: Partial<SshGatewayLimits>;
}

/**
 * The SSH role in two steps, because the access grant goes into the control plane and the gateway
 * needs the plane's LiveSandboxes: `grant` first (passed as `access.ssh`), then `listen()`. The
 * grant names the port the gateway actually bound (MAGS_SSH_PORT=0 picks one).
 */
export class SshRole {
  readonly grant: SshGrant;
  private gateway?: SshGateway;
  private port = 0;
  private hostPublicKey?: string;
  private unsubscribe?: () => void;

  constructor(private readonly o: SshRoleOptions) {
    this.grant = new SshGrant({ keys: o.keys, port: () => this.port, host: o.publicHost, hostPublicKey: () => this.hostPublicKey });
  }

  /** Starts the gateway; keys of jobs that end are revoked. Resolves with the bound port. */
  async listen(live: LiveSandboxes, port: number, host: string): Promise<number> {
    const hostKey = await loadHostKey(hostKeyPath(this.o.dataDir));
    this.hostPublicKey = publicKeyOf(hostKey);
    this.gateway = new SshGateway({ keys: this.o.keys, jobs: this.o.jobs, live, hostKey, log: this.o.log, limits: this.o.limits });
    this.port = await this.gateway.listen(port, host);
    this.unsubscribe = live.onChange((jobId, state) => {
      if (state !== 'ended') return;
      this.grant.revokeJob(jobId).then(
        (n) => n > 0 && this.o.log.info({ jobId, keys: n }, 'SSH keys of an ended job revoked'),
        (err: Error) => this.o.log.error({ err, jobId }, 'revoking the SSH keys of an ended job failed'),
      );
    });
    return this.port;
  }

  get connections(): number {
    return this.gateway?.connections ?? 0;
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await this.gateway?.close();
  }
}
