import type { Logger } from 'pino';
import type { Job } from '../storage/metadata/store.js';

/** The statuses a job announces when its run ends. */
export type EndedStatus = 'completed' | 'error' | 'sleeping';

/** One workspace sync and what it changed (paths with sizes; the lists are capped, `truncated` says so). */
export interface WorkspaceSynced {
  userId: string;
  workspace: string;
  version: string | undefined;
  changes: ChangeSet;
}

export interface ChangedFile {
  path: string;
  size: number;
}

export interface ChangeSet {
  added: ChangedFile[];
  modified: ChangedFile[];
  deleted: ChangedFile[];
  truncated: boolean;
}

/** Who wants to hear when jobs end and workspaces sync (the cron and webhook services). */
export interface JobEventListener {
  /** A job's run ended with this stored status (after its workspace's final sync). */
  jobEnded?(job: Job, status: EndedStatus): Promise<void> | void;
  workspaceSynced?(e: WorkspaceSynced): Promise<void> | void;
}

/**
 * Hands job and workspace events to listeners. A listener's failure is logged and never reaches
 * the scheduler: the job's outcome is already stored.
 */
export class JobEvents {
  private readonly listeners: JobEventListener[] = [];

  constructor(private readonly log: Logger) {}

  add(listener: JobEventListener): void {
    this.listeners.push(listener);
  }

  async jobEnded(job: Job, status: EndedStatus): Promise<void> {
    for (const l of this.listeners) {
      try {
        await l.jobEnded?.(job, status);
      } catch (err) {
        this.log.error({ err, jobId: job.request_id }, 'a job-ended listener failed');
      }
    }
  }

  async workspaceSynced(e: WorkspaceSynced): Promise<void> {
    for (const l of this.listeners) {
      try {
        await l.workspaceSynced?.(e);
      } catch (err) {
        this.log.error({ err, workspace: e.workspace }, 'a workspace-synced listener failed');
      }
    }
  }
}
