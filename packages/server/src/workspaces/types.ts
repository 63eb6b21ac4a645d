import type { VersionInfo, WorkspaceSnapshot } from './sync/index.js';

/**
 * What the workspace service needs from the sync engine (workspaces/sync/: content-addressed
 * manifests and blobs in a blob store). `WorkspaceSync` of that module has these methods; the
 * service depends on this interface only, and works without an engine (workspaces then live on
 * this host only).
 *
 * `ws` is the workspace's key in the store: `<userId>.<name>`, unique across users.
 * `layerDir` is the workspace's overlay upper directory on this host.
 */
export interface WorkspaceSyncer {
  /** Uploads what changed in `layerDir` and writes a new manifest (the workspace's latest version). */
  sync(ws: string, layerDir: string, opts?: { signal?: AbortSignal; imageVersion?: string }): Promise<SyncResult>;
  /** Rebuilds `layerDir` from the latest (or the given) version. */
  restore(ws: string, layerDir: string, opts?: { version?: string }): Promise<RestoreResult>;
  /** Stored versions, newest first. */
  history(ws: string): Promise<VersionInfo[]>;
  latest(ws: string): Promise<VersionInfo | undefined>;
  /** Removes the workspace's manifests and the blobs nothing else references. */
  delete(ws: string): Promise<void>;
  /** A read-only view of the newest version (undefined when never synced); the files API reads it. */
  snapshot?(ws: string): Promise<WorkspaceSnapshot | undefined>;
}


/** What the service reads of a sync's outcome (the engine's `SyncResult` has more). */
export interface SyncResult {
  version?: string | undefined;
}

/** What the service reads of a restore's outcome. */
export interface RestoreResult {
  version?: string;
}

/** One stored version, as the engine's `history` lists it. */
export type { VersionInfo };
