/** A workspace: a user's named, persistent writable layer (`workspace_id` on jobs). */
export interface WorkspaceRecord {
  user_id: string;
  /** The name clients send as `workspace_id`; unique per user. */
  name: string;
  /** Version of the base image the workspace was created on. */
  image_version: string;
  /** Size of the workspace layer's file system in GB (the first job's `disk_gb`). */
  disk_gb: number;
  created_at: string;
  last_used_at: string | null;
  last_sync_at: string | null;
}

export type WorkspacePatch = Partial<Pick<WorkspaceRecord, 'image_version' | 'disk_gb' | 'last_used_at' | 'last_sync_at'>>;

/**
 * Workspace rows. `KyselyWorkspaceStore` implements it on SQLite and PostgreSQL (one code path);
 * every call is scoped to one user, so one user's workspace is invisible to another.
 */
export interface WorkspaceStore {
  getWorkspace(userId: string, name: string): Promise<WorkspaceRecord | undefined>;
  /** Inserts the row unless the user already has a workspace of that name; returns the stored row. */
  ensureWorkspace(ws: WorkspaceRecord): Promise<{ row: WorkspaceRecord; created: boolean }>;
  /** Request id of a pending or running job of the user on this workspace, if any. */
  activeJob(userId: string, name: string): Promise<string | undefined>;
  /** The user's workspaces, oldest first. */
  listWorkspaces(userId: string): Promise<WorkspaceRecord[]>;
  updateWorkspace(userId: string, name: string, patch: WorkspacePatch): Promise<boolean>;
  /** Removes the row; false when there was none. */
  deleteWorkspace(userId: string, name: string): Promise<boolean>;
}
