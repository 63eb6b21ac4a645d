import type { User } from './store.js';

/** A browser session; only the sha256 of the cookie value is stored. */
export interface SessionRecord {
  id_hash: string;
  user_id: string;
  /** The token a cookie-authenticated write must echo in `X-CSRF-Token`. */
  csrf_token: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
}

/** A one-time link that sets a user's password; only the sha256 of its token is stored. */
export interface InviteRecord {
  token_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

/** A user with the credential columns the session service needs. */
export interface UserCredentials {
  user: User;
  password_hash: string | null;
}

/**
 * Accounts of the dashboard: passwords, sessions, invites and disabling users. `KyselySessionStore`
 * implements it on SQLite and PostgreSQL.
 */
export interface SessionStore {
  /** The user whose name or email is `identity` (emails compare case-insensitively). */
  findUserByIdentity(identity: string): Promise<UserCredentials | undefined>;
  setPassword(userId: string, passwordHash: string): Promise<void>;
  setEmail(userId: string, email: string | null): Promise<void>;
  /** Sets or clears `disabled_at`; disabling also revokes the user's sessions. False when no such user. */
  setDisabled(userId: string, disabledAt: string | null): Promise<boolean>;
  createSession(session: SessionRecord): Promise<void>;
  /** The unrevoked, unexpired session with this hash whose user is not disabled. */
  findSession(idHash: string, now: string): Promise<{ session: SessionRecord; user: User } | undefined>;
  revokeSession(idHash: string, at: string): Promise<void>;
  createInvite(invite: InviteRecord): Promise<void>;
  /**
   * Marks an unused, unexpired invite used and sets the user's password in one transaction;
   * returns the user, or undefined when the invite is unknown, used or expired.
   */
  redeemInvite(tokenHash: string, passwordHash: string, now: string): Promise<User | undefined>;
}
