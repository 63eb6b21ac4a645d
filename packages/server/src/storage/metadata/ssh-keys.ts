/** A public key the SSH gateway accepts: granted by `access {"port": 22}` for one job of one user. */
export interface SshKeyRecord {
  /** Sorts by creation time (`sk_` + time + random). */
  id: string;
  user_id: string;
  /** The job (request id) the key logs in to. */
  job_id: string;
  /** `SHA256:<base64>` of the public key blob, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** The public key in authorized_keys form (`ssh-ed25519 AAAA...`). */
  public_key: string;
  created_at: string;
  /** When the key stopped being accepted (a newer grant pushed it out, or revokeForJob). */
  revoked_at: string | null;
}

/**
 * SSH key rows: only public keys are stored; the private half is handed to the client once.
 * `KyselySshKeyStore` implements it on SQLite and PostgreSQL.
 */
export interface SshKeyStore {
  /** Adds a key and revokes the job's older keys beyond the newest `keep` (this one included). */
  insertSshKey(row: SshKeyRecord, keep: number): Promise<void>;
  /** The key with this fingerprint, revoked or not. */
  findSshKey(fingerprint: string): Promise<SshKeyRecord | undefined>;
  /** Revokes every key of a job; answers how many were active. */
  revokeSshKeys(jobId: string, at: string): Promise<number>;
}
