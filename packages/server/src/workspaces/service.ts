import type { Logger } from 'pino';
import { run } from '../host/exec.js';
import { AppError } from '../services/errors.js';
import type { Job, JobStore, User } from '../storage/metadata/store.js';
import type { WorkspaceRecord, WorkspaceStore } from '../storage/metadata/workspaces.js';
import type { LocalLayers } from './local-layers.js';
import { syncWithRetry, WorkspaceSyncError, type SyncRetryOptions } from './sync/index.js';
import type { WorkspaceSyncer } from './types.js';

/**
 * Workspace names: what clients send as `workspace_id` / `base_workspace_id`. They name a directory
 * on the host, so anything that could be a path (`..`, `/`), a control character or an overlong
 * name is refused before it gets near the disk.
 */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const WORKSPACE_NAME_MAX_LENGTH = 64;

/** A workspace as the API lists it. */
export interface WorkspaceInfo {
  workspace_id: string;
  name: string;
  /** Disk space the layer takes on this host (0 when it is only in the blob store). */
  size_bytes: number;
  disk_gb: number;
  image_version: string;
  created_at: string;
  last_used_at: string | null;
  last_sync_at: string | null;
  /** A pending or running job uses it now. */
  in_use: boolean;
  /** Stored versions in the blob store; null without a sync engine. */
  versions: number | null;
}

/** What a job's sandbox is created with for its workspace fields, and how to give it back. */
export interface WorkspaceLease {
  workspaceLayerDir?: string;
  extraLowerDirs?: string[];
  /** The workspace's own image version when the server still has it (else the current one runs). */
  imageVersion?: string;
  /** Lines for the job's output (e.g. the image it runs on). */
  notes: string[];
  /**
   * Syncs the workspace (when there is an engine) and drops the job's mount; never throws. When the
   * blob store is down the sync continues in the background (see `syncOrRetryLater`).
   */
  close(): Promise<void>;
}

/** One stored version of a workspace, newest first in `WorkspaceHistory`. */
export interface WorkspaceVersion {
  version: string;
  created_at: string;
  files: number;
  bytes: number;
  image_version: string | null;
}

export interface WorkspaceHistory {
  workspace_id: string;
  versions: WorkspaceVersion[];
}

export interface WorkspaceServiceOptions {
  store: WorkspaceStore;
  jobs: JobStore;
  layers: LocalLayers;
  /** The sync engine; undefined = workspaces live on this host only. */
  syncer?: WorkspaceSyncer;
  /** Version of the base image sandboxes run on now. */
  imageVersion: () => string;
  /** Whether the image directory still has this image version (default: never). */
  hasImage?: (version: string) => boolean;
  log: Logger;
  /** Seconds between syncs while a job runs (0 = only at the end). */
  syncIntervalSeconds?: number;
  /** Refuses a resize beyond the host's free disk like a job's disk_gb (absent: no limit). */
  admission?: { checkDisk(diskGb: number): void };
  /** Backoff of the after-job sync while the blob store is down (default: 8 attempts, 0.5 s doubling to 30 s). */
  syncRetry?: Pick<SyncRetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>;
}

/**
 * Workspaces: validation and the one-job-at-a-time rule at submit, the layer (and base layer) of a
 * job's sandbox, sync after the job (retried while the blob store is down), list, delete, history,
 * restore to a version, resize and sync on demand. A workspace belongs to one
 * user: every lookup is by (user, name), so two users' workspaces of the same name never meet.
 */
export class WorkspaceService {
  /**
   * Workspaces a job holds as its layer. Admission (the database) lets one job per workspace be
   * pending or running; a job's status is stored before its lease is closed (sandbox destroyed,
   * sync, unmount), so the next job may start in between: it waits for `released`.
   */
  private readonly leased = new Map<string, Holder>();
  /** Serialises submissions (busy check + insert) and syncs per workspace. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /**
   * After-job syncs that failed while the blob store was down and are retried in the background.
   * The workspace stays mounted meanwhile; its next job may run, restore and delete answer 409.
   */
  private readonly retrying = new Map<string, Promise<void>>();
  /** Aborts background retries at shutdown. */
  private readonly stopping = new AbortController();

  constructor(private readonly o: WorkspaceServiceOptions) {
    if (!o.syncer) o.log.info('no workspace sync engine configured: workspaces are kept on this host only');
  }

  /** Unmounts layers a crashed daemon left mounted. */
  async init(): Promise<void> {
    const n = await this.o.layers.sweep();
    if (n > 0) this.o.log.warn({ mounts: n }, 'unmounted workspace layers a previous server process left mounted');
  }

  /**
   * Admits a submission: checks the workspace fields and runs `insert` (storing the pending job)
   * while no other submission of the same workspace can pass the busy check.
   */
  async admit<T>(userId: string, workspace: string | null, base: string | null, insert: () => Promise<T>): Promise<T> {
    if (workspace) validateName('workspace_id', workspace);
    if (base) {
      validateName('base_workspace_id', base);
      if (base === workspace) throw new AppError('VALIDATION_ERROR', 'base_workspace_id: must differ from workspace_id', 'Omit base_workspace_id to keep using the workspace itself.');
      if (!(await this.o.store.getWorkspace(userId, base))) throw notFound(base);
    }
    if (!workspace) return insert();
    return this.locked(key(userId, workspace), async () => {
      const active = await this.o.store.activeJob(userId, workspace);
      if (active) throw busy(workspace, active);
      return insert();
    });
  }

  /** The layers of a job's sandbox; undefined when the job has no workspace fields. */
  async open(job: Job, log: Logger): Promise<WorkspaceLease | undefined> {
    const name = job.workspace_id;
    const base = job.base_workspace_id;
    if (!name && !base) return undefined;
    const userId = job.user_id;
    const notes: string[] = [];
    const undo: Array<() => Promise<void>> = [];
    const undoOnFailure: Array<() => Promise<void>> = [];
    const rollback = async () => {
      for (const fn of undo.reverse()) await fn().catch((err: unknown) => log.error({ err }, 'could not undo a workspace step'));
    };
    try {
      let baseUpper: string | undefined;
      if (base) {
        const row = await this.o.store.getWorkspace(userId, base);
        if (!row) throw notFound(base);
        await this.ensureLocal(userId, row, log);
        baseUpper = await this.o.layers.acquire(userId, base);
        undo.push(() => this.o.layers.release(userId, base));
      }
      if (!name) return { extraLowerDirs: [baseUpper!], notes, close: rollback };

      const k = key(userId, name);
      for (let held = this.leased.get(k); held; held = this.leased.get(k)) await held.released;
      let done!: () => void;
      const lease: Holder = { jobId: job.request_id, released: new Promise<void>((r) => (done = r)) };
      this.leased.set(k, lease);
      undo.push(async () => {
        this.leased.delete(k);
        done();
      });

      const now = new Date().toISOString();
      const fresh: WorkspaceRecord = { user_id: userId, name, image_version: this.o.imageVersion(), disk_gb: job.disk_gb, created_at: now, last_used_at: null, last_sync_at: null };
      const { row, created } = await this.o.store.ensureWorkspace(fresh);
      if (created) {
        // A workspace this job created is not left half made (e.g. a fork whose copy failed).
        undoOnFailure.push(async () => {
          await this.o.layers.remove(userId, name);
          await this.o.store.deleteWorkspace(userId, name);
        });
      }
      await this.ensureLocal(userId, row, log);
      if (job.disk_gb > row.disk_gb && !this.o.layers.inUse(userId, name)) {
        if (await this.o.layers.grow(userId, name, job.disk_gb)) notes.push(`workspace ${name} grown to ${job.disk_gb} GB`);
        await this.o.store.updateWorkspace(userId, name, { disk_gb: job.disk_gb });
      }
      const upper = await this.o.layers.acquire(userId, name);
      undo.push(() => this.o.layers.release(userId, name));
      if (created && baseUpper) {
        // A fork starts as a copy of its base, so later runs keep the base's files without the base.
        await run('cp', ['-a', '--reflink=auto', `${baseUpper}/.`, `${upper}/`]);
        notes.push(`workspace ${name} created from base workspace ${base}`);
      }
      let imageVersion: string | undefined;
      if (row.image_version !== this.o.imageVersion()) {
        if (this.o.hasImage?.(row.image_version)) {
          imageVersion = row.image_version;
          notes.push(`workspace ${name} runs on image ${row.image_version}, the one it was created on (the current image is ${this.o.imageVersion()})`);
        } else {
          notes.push(`workspace ${name} was created on image ${row.image_version}, which this server no longer has; running on image ${this.o.imageVersion()}`);
        }
      }
      await this.o.store.updateWorkspace(userId, name, { last_used_at: now });
      const timer = this.startPeriodicSync(userId, name, upper, log);
      return {
        workspaceLayerDir: upper,
        extraLowerDirs: baseUpper ? [baseUpper] : undefined,
        imageVersion,
        notes,
        close: () => {
          lease.closed ??= (async () => {
            if (timer) clearInterval(timer);
            await this.syncOrRetryLater(userId, name, upper, log);
            await rollback();
          })();
          return lease.closed;
        },
      };
    } catch (err) {
      await rollback();
      for (const fn of undoOnFailure) await fn().catch((e: unknown) => log.error({ err: e }, 'could not remove a workspace left half made'));
      throw err;
    }
  }

  async list(user: User): Promise<WorkspaceInfo[]> {
    const rows = await this.o.store.listWorkspaces(user.id);
    return Promise.all(
      rows.map(async (r) => ({
        workspace_id: r.name,
        name: r.name,
        size_bytes: await this.o.layers.sizeBytes(user.id, r.name),
        disk_gb: r.disk_gb,
        image_version: r.image_version,
        created_at: r.created_at,
        last_used_at: r.last_used_at,
        last_sync_at: r.last_sync_at,
        in_use: (await this.o.store.activeJob(user.id, r.name)) !== undefined,
        versions: this.o.syncer ? (await this.o.syncer.history(key(user.id, r.name))).length : null,
      })),
    );
  }

  /** Bytes of every workspace layer of a user on this host (usage metering and the storage quota). */
  async storedBytes(userId: string): Promise<number> {
    let n = 0;
    for (const r of await this.o.store.listWorkspaces(userId)) n += await this.o.layers.sizeBytes(userId, r.name);
    return n;
  }

  /** Deletes a workspace: its local layer, its stored versions and its row. */
  async delete(user: User, name: string): Promise<void> {
    validateName('workspace_id', name);
    const k = key(user.id, name);
    await this.exclusive(user, name, async () => {
      await this.o.layers.remove(user.id, name);
      if (this.o.syncer) await this.o.syncer.delete(k);
      await this.o.store.deleteWorkspace(user.id, name);
      this.o.log.info({ userId: user.id, workspace: name }, 'workspace deleted');
    });
  }

  /**
   * Syncs a workspace now. `ref` is a workspace name, or a job's request id or name (its
   * workspace). Without a sync engine the layer is already on this host's disk and nothing is
   * uploaded: the answer says so (`synced: false`).
   */
  async syncNow(user: User, ref: string): Promise<{ workspace_id: string; synced: boolean; version?: string; message: string }> {
    const name = await this.resolve(user, ref);
    if (!this.o.syncer) {
      return { workspace_id: name, synced: false, message: 'This server keeps workspaces on this host only (no sync engine): the layer is on disk, nothing was uploaded' };
    }
    const row = await this.o.store.getWorkspace(user.id, name);
    if (!row || !(await this.o.layers.exists(user.id, name))) {
      return { workspace_id: name, synced: false, message: `Workspace "${name}" has no layer on this host; nothing to sync` };
    }
    const upper = await this.o.layers.acquire(user.id, name);
    try {
      const r = await this.locked(key(user.id, name), () => this.o.syncer!.sync(key(user.id, name), upper, { imageVersion: row.image_version }));
      await this.o.store.updateWorkspace(user.id, name, { last_sync_at: new Date().toISOString() });
      return { workspace_id: name, synced: true, version: r.version, message: `Workspace "${name}" synced` };
    } finally {
      await this.o.layers.release(user.id, name);
    }
  }

  /** Stored versions of a workspace, newest first (none without a sync engine). */
  async history(user: User, name: string): Promise<WorkspaceHistory> {
    validateName('workspace_id', name);
    if (!(await this.o.store.getWorkspace(user.id, name))) throw notFound(name);
    const versions = this.o.syncer ? await this.o.syncer.history(key(user.id, name)).catch(storeDown) : [];
    return {
      workspace_id: name,
      versions: versions.map((v) => ({ version: v.version, created_at: v.created_at, files: v.files, bytes: v.bytes, image_version: v.image_version ?? null })),
    };
  }

  /**
   * Rebuilds the workspace's layer from a stored version, then syncs it so that state is the
   * newest version (what other hosts restore). The current layer is synced first, so the state it
   * replaces stays in the history.
   */
  async restore(user: User, name: string, version: string): Promise<{ workspace_id: string; restored_version: string; version: string }> {
    validateName('workspace_id', name);
    const syncer = this.o.syncer;
    if (!syncer) throw new AppError('FEATURE_NOT_AVAILABLE', 'This server keeps workspaces on this host only (no sync engine): there are no versions to restore', 'Configure a blob store (MAGS_BLOB_STORE) to keep workspace versions.');
    const k = key(user.id, name);
    return this.exclusive(user, name, async (row) => {
      const known = await syncer.history(k).catch(storeDown);
      if (!known.some((v) => v.version === version)) {
        throw new AppError('VERSION_NOT_FOUND', `Workspace "${name}" has no version "${clip(version)}"`, `List its versions with \`mags workspace history ${name}\`.`);
      }
      if (await this.o.layers.exists(user.id, name)) {
        const upper = await this.o.layers.acquire(user.id, name);
        try {
          await syncer.sync(k, upper, { imageVersion: row.image_version }).catch(storeDown);
        } finally {
          await this.o.layers.release(user.id, name);
        }
        await this.o.layers.remove(user.id, name);
      }
      await this.o.layers.create(user.id, name, row.disk_gb);
      const upper = await this.o.layers.acquire(user.id, name);
      let whole = false;
      try {
        await syncer.restore(k, upper, { version }).catch(storeDown);
        whole = true;
        const r = await syncer.sync(k, upper, { imageVersion: row.image_version }).catch(storeDown);
        await this.o.store.updateWorkspace(user.id, name, { last_sync_at: new Date().toISOString() });
        // A restored tree equal to the newest version makes no new version: the newest already is it.
        const newest = r.version ?? (await syncer.latest(k).catch(storeDown))?.version ?? version;
        this.o.log.info({ userId: user.id, workspace: name, from: version, version: newest }, 'workspace restored to a stored version');
        return { workspace_id: name, restored_version: version, version: newest };
      } finally {
        await this.o.layers.release(user.id, name);
        // A half-restored layer must not pass for the workspace: the next job restores the newest version.
        if (!whole) await this.o.layers.remove(user.id, name);
      }
    });
  }

  /** Grows the workspace's layer file system to `diskGb` GB (never shrinks). */
  async resize(user: User, name: string, diskGb: number): Promise<{ workspace_id: string; disk_gb: number; grown: boolean }> {
    validateName('workspace_id', name);
    this.o.admission?.checkDisk(diskGb);
    return this.exclusive(user, name, async (row) => {
      if (diskGb < row.disk_gb) {
        throw new AppError('INVALID_STATE', `disk_gb: ${diskGb} is smaller than workspace "${name}" (${row.disk_gb} GB); a workspace never shrinks`, `Ask for ${row.disk_gb} GB or more.`);
      }
      if (diskGb === row.disk_gb) return { workspace_id: name, disk_gb: diskGb, grown: false };
      // A layer only in the blob store is created at the new size when a job next needs it.
      if (await this.o.layers.exists(user.id, name)) await this.o.layers.grow(user.id, name, diskGb);
      await this.o.store.updateWorkspace(user.id, name, { disk_gb: diskGb });
      this.o.log.info({ userId: user.id, workspace: name, from: row.disk_gb, to: diskGb }, 'workspace resized');
      return { workspace_id: name, disk_gb: diskGb, grown: true };
    });
  }

  /**
   * Runs `fn` on an existing workspace no one uses: no pending or running job, no lease still
   * closing, no background sync retry, not mounted as another job's base. WORKSPACE_BUSY otherwise.
   */
  private async exclusive<T>(user: User, name: string, fn: (row: WorkspaceRecord) => Promise<T>): Promise<T> {
    const k = key(user.id, name);
    const active = await this.o.store.activeJob(user.id, name);
    if (active) throw busy(name, active);
    // A job that just ended may still be syncing: wait for it outside the lock its sync takes.
    await this.leased.get(k)?.released;
    return this.locked(k, async () => {
      const row = await this.o.store.getWorkspace(user.id, name);
      if (!row) throw notFound(name);
      const active = await this.o.store.activeJob(user.id, name);
      if (active) throw busy(name, active);
      if (this.leased.has(k)) throw busy(name, this.leased.get(k)!.jobId);
      if (this.retrying.has(k)) {
        throw new AppError('WORKSPACE_BUSY', `Workspace "${name}" is waiting for the blob store to take its last sync`, 'Retry when the blob store is reachable again (the server retries the sync in the background).');
      }
      if (this.o.layers.inUse(user.id, name)) {
        throw new AppError('WORKSPACE_BUSY', `Workspace "${name}" is in use as the base of a running job`, 'Wait for the jobs based on it to end, then retry.');
      }
      return fn(row);
    });
  }

  /** The workspace a sync reference names: a workspace of the user, else a job's workspace. */
  private async resolve(user: User, ref: string): Promise<string> {
    if (NAME_RE.test(ref) && ref.length <= WORKSPACE_NAME_MAX_LENGTH && (await this.o.store.getWorkspace(user.id, ref))) return ref;
    const job = ref === '' ? undefined : await this.o.jobs.findJobForUser(user.id, ref);
    if (!job) {
      throw new AppError('WORKSPACE_NOT_FOUND', `No workspace or job of yours is called "${clip(ref)}"`, 'List workspaces with `mags workspace list`.');
    }
    if (!job.workspace_id) throw new AppError('INVALID_STATE', `Job ${job.request_id} has no workspace; only workspace jobs can be synced`, 'Run the job with a workspace (`mags run -w NAME`).');
    return job.workspace_id;
  }

  /** Makes sure the workspace's layer exists here: restored from the blob store, else new. */
  private async ensureLocal(userId: string, row: WorkspaceRecord, log: Logger): Promise<void> {
    if (await this.o.layers.exists(userId, row.name)) return;
    const k = key(userId, row.name);
    const latest = this.o.syncer ? await this.o.syncer.latest(k) : undefined;
    await this.o.layers.create(userId, row.name, row.disk_gb);
    if (!latest) return;
    const upper = await this.o.layers.acquire(userId, row.name);
    try {
      await this.o.syncer!.restore(k, upper, { version: latest.version });
      log.info({ workspace: row.name, version: latest.version }, 'workspace restored from the blob store');
    } catch (err) {
      // A half-restored layer must not pass for the workspace: the next use restores again.
      await this.o.layers.release(userId, row.name);
      await this.o.layers.remove(userId, row.name);
      throw err;
    }
    await this.o.layers.release(userId, row.name);
  }

  private startPeriodicSync(userId: string, name: string, upper: string, log: Logger): NodeJS.Timeout | undefined {
    const seconds = this.o.syncIntervalSeconds ?? 0;
    if (!this.o.syncer || seconds <= 0) return undefined;
    const timer = setInterval(() => void this.syncQuietly(userId, name, upper, log), seconds * 1000);
    timer.unref();
    return timer;
  }

  /** Syncs and records the time; a failure is logged (the job's outcome does not depend on it). */
  private async syncQuietly(userId: string, name: string, upper: string, log: Logger): Promise<void> {
    const syncer = this.o.syncer;
    if (!syncer) return;
    const k = key(userId, name);
    try {
      const row = await this.o.store.getWorkspace(userId, name);
      await this.locked(k, () => syncer.sync(k, upper, { imageVersion: row?.image_version }));
      await this.o.store.updateWorkspace(userId, name, { last_sync_at: new Date().toISOString() });
    } catch (err) {
      log.error({ err, workspace: name }, 'workspace sync failed; the layer stays on this host and the next sync retries');
    }
  }

  /**
   * The after-job sync. When the blob store is down (a retryable failure), the sync is retried in
   * the background with backoff: the retry keeps its own mount reference, so the job's lease ends
   * now and the workspace's next job may start; restore and delete answer WORKSPACE_BUSY until the
   * retry has finished. A later retry of the same workspace runs after the earlier one.
   */
  private async syncOrRetryLater(userId: string, name: string, upper: string, log: Logger): Promise<void> {
    const syncer = this.o.syncer;
    if (!syncer) return;
    const k = key(userId, name);
    const row = await this.o.store.getWorkspace(userId, name).catch(() => undefined);
    const imageVersion = row?.image_version;
    try {
      await this.locked(k, () => syncer.sync(k, upper, { imageVersion }));
      await this.o.store.updateWorkspace(userId, name, { last_sync_at: new Date().toISOString() });
      return;
    } catch (err) {
      if (!(err instanceof WorkspaceSyncError && err.retryable) || this.stopping.signal.aborted) {
        log.error({ err, workspace: name }, 'workspace sync failed; the layer stays on this host and the next sync retries');
        return;
      }
      log.warn({ err, workspace: name }, 'workspace sync failed (blob store unavailable); retrying in the background');
    }
    await this.o.layers.acquire(userId, name);
    const prev = this.retrying.get(k) ?? Promise.resolve();
    const task = prev.then(async () => {
      try {
        const lockedSyncer = { sync: (ws: string, dir: string, opts?: { signal?: AbortSignal; imageVersion?: string }) => this.locked(k, () => syncer.sync(ws, dir, opts)) };
        const r = await syncWithRetry(lockedSyncer, k, upper, {
          ...this.o.syncRetry,
          imageVersion,
          signal: this.stopping.signal,
          onRetry: (err, attempt, delayMs) => log.warn({ err, workspace: name, attempt, delayMs }, 'workspace sync retry failed; retrying'),
        });
        await this.o.store.updateWorkspace(userId, name, { last_sync_at: new Date().toISOString() });
        log.info({ workspace: name, version: r.version }, 'workspace synced after the blob store came back');
      } catch (err) {
        log.error({ err, workspace: name }, 'workspace sync retries gave up; the layer stays on this host and its next job syncs it');
      } finally {
        await this.o.layers.release(userId, name).catch((err: unknown) => log.error({ err, workspace: name }, 'could not unmount a workspace layer'));
      }
    });
    this.retrying.set(k, task);
    void task.then(() => {
      if (this.retrying.get(k) === task) this.retrying.delete(k);
    });
  }

  /** Stops background sync retries (daemon shutdown) and waits for them; the layers keep their changes. */
  async shutdown(): Promise<void> {
    this.stopping.abort();
    await Promise.all([...this.retrying.values()]);
  }

  /** Runs `fn` after every earlier call for the same key has settled. */
  private async locked<T>(k: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(k) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(k, settled);
    try {
      return await next;
    } finally {
      if (this.locks.get(k) === settled) this.locks.delete(k);
    }
  }
}

/** Refuses names that are not safe as one path segment; VALIDATION_ERROR names the field. */
export function validateName(field: string, name: string): void {
  if (name.length > WORKSPACE_NAME_MAX_LENGTH || !NAME_RE.test(name)) {
    throw new AppError(
      'VALIDATION_ERROR',
      `${field}: "${clip(name)}" is not a valid workspace name`,
      `Use 1-${WORKSPACE_NAME_MAX_LENGTH} letters, digits, ".", "_" or "-", starting with a letter or digit.`,
    );
  }
}

interface Holder {
  jobId: string;
  /** Resolves when the lease is closed and the workspace unmounted. */
  released: Promise<void>;
  closed?: Promise<void>;
}

/** The workspace's key in locks and in the blob store: user id (a UUID, no dot) + "." + name. */
function key(userId: string, name: string): string {
  return `${userId}.${name}`;
}

function busy(name: string, jobId: string): AppError {
  return new AppError('WORKSPACE_BUSY', `Workspace "${name}" is already in use by job ${jobId}`, 'Wait for that job to end or stop it (`mags stop <id>`), then retry.');
}

function notFound(name: string): AppError {
  return new AppError('WORKSPACE_NOT_FOUND', `No workspace of yours is called "${clip(name)}"`, 'List workspaces with `mags workspace list`; a workspace is created by the first job that names it in workspace_id.');
}

/** A blob store failure as the API reports it (503, retry later); other errors pass through. */
function storeDown(err: unknown): never {
  if (err instanceof WorkspaceSyncError && err.retryable) {
    throw new AppError('SERVICE_UNAVAILABLE', 'The blob store that keeps workspace versions is unavailable', 'Retry later; the server log has the details.');
  }
  throw err;
}

function clip(s: string): string {
  // eslint-disable-next-line no-control-regex
  const printable = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return printable.length > 80 ? printable.slice(0, 80) + '...' : printable;
}
