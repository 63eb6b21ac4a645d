/**
 * Real sandboxes of the container driver handed to exec, the SSH gateway and the terminal through
 * a LiveSandboxes that maps job ids to sandboxes the test created (the lifecycle manager's own
 * tests cover waking; these cover what runs once a sandbox is attached).
 */
import type { Sandbox } from '../../src/runtime/driver.js';
import type { AttachPurpose, LiveAttachment, LiveSandboxes, LiveState } from '../../src/sandboxes/live.js';
import { AppError } from '../../src/services/errors.js';
import type { Job } from '../../src/storage/metadata/store.js';

export class StaticLive implements LiveSandboxes {
  readonly sandboxes = new Map<string, Sandbox>();
  /** Open attachments per job. */
  readonly open = new Map<string, number>();
  /** Attach calls per purpose. */
  readonly purposes: string[] = [];

  async attach(job: Job, purpose: AttachPurpose): Promise<LiveAttachment> {
    const sandbox = this.sandboxes.get(job.request_id);
    if (!sandbox) throw new AppError('JOB_NOT_RUNNING', `job ${job.request_id} is not running`);
    this.purposes.push(purpose);
    this.open.set(job.request_id, (this.open.get(job.request_id) ?? 0) + 1);
    let released = false;
    return {
      job,
      sandbox,
      woke: 'no',
      release: () => {
        if (released) return;
        released = true;
        this.open.set(job.request_id, (this.open.get(job.request_id) ?? 1) - 1);
      },
    };
  }

  touch(): void {}

  state(jobId: string): LiveState {
    return this.sandboxes.has(jobId) ? 'running' : 'ended';
  }

  onChange(): () => void {
    return () => undefined;
  }

  /** Open attachments over all jobs. */
  get openCount(): number {
    let n = 0;
    for (const v of this.open.values()) n += v;
    return n;
  }
}
