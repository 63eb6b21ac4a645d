import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SessionStore } from '../storage/metadata/sessions.js';
import { UniqueViolationError, type User, type UserStore } from '../storage/metadata/store.js';
import { AppError } from './errors.js';
import { LoginLimiter } from './login-limiter.js';
import { DUMMY_HASH, PASSWORD_LIMITS, hashPassword, verifyPassword } from './passwords.js';
import { hashToken } from './tokens.js';

/** How long an invite link stays valid. */
const INVITE_TTL_MS = 7 * 24 * 3600_000;

export interface LoginInput {
  /** Username or email (with `password`). */
  identity?: string;
  password?: string;
  /** An API token instead of a password. */
  token?: string;
}

export interface StartedSession {
  /** The cookie value: shown to the browser once, stored only as its sha256. */
  secret: string;
  csrf_token: string;
  user: User;
  expires_at: string;
}

export interface SessionsOptions {
  sessionTtlMs: number;
  limiter?: LoginLimiter;
}

/**
 * Dashboard accounts: sign-in with a password or an API token (rate-limited per account and per
 * address), sessions, invites that set a password, and disabling users.
 */
export class SessionsService {
  private readonly limiter: LoginLimiter;

  constructor(
    private readonly store: SessionStore,
    private readonly users: UserStore,
    private readonly authenticateToken: (authorization: string) => Promise<User>,
    private readonly log: Logger,
    private readonly opts: SessionsOptions,
  ) {
    this.limiter = opts.limiter ?? new LoginLimiter();
  }

  /** Signs in; throws RATE_LIMITED while the account or address has too many recent failures. */
  async login(input: LoginInput, address: string): Promise<StartedSession> {
    const account = input.token ? 'token' : (input.identity ?? '');
    const wait = this.limiter.retryAfterSeconds(account, address);
    if (wait > 0) {
      throw new AppError('RATE_LIMITED', `Too many failed sign-ins; try again in ${wait} seconds`, 'Check the username and password, or ask the admin for an invite link to set a new password.');
    }
    const user = await this.checkCredentials(input);
    if (!user) {
      this.limiter.recordFailure(account, address);
      this.log.info({ account: account.slice(0, 64), address }, 'failed sign-in');
      throw new AppError('INVALID_CREDENTIALS', 'Wrong username, email, password or token', 'Sign in with your username (or email) and password, or paste an API token.');
    }
    this.limiter.recordSuccess(account);
    return this.start(user);
  }

  /** The user and CSRF token of a session cookie value, or undefined when it is not valid. */
  async authenticate(secret: string): Promise<{ user: User; csrf_token: string } | undefined> {
    if (secret.length < 16 || secret.length > 128) return undefined;
    const found = await this.store.findSession(hashToken(secret), new Date().toISOString());
    return found && { user: found.user, csrf_token: found.session.csrf_token };
  }

  async logout(secret: string): Promise<void> {
    await this.store.revokeSession(hashToken(secret), new Date().toISOString());
  }

  /** Admin only: a one-time token that sets the user's password (valid for a week). */
  async invite(actor: User, userId: string): Promise<{ token: string; expires_at: string }> {
    requireAdmin(actor);
    const user = await this.users.getUser(userId);
    if (!user) throw new AppError('USER_NOT_FOUND', `No user has id "${userId}"`, 'List users with GET /api/v1/users.');
    const token = randomBytes(24).toString('base64url');
    const now = Date.now();
    const expires_at = new Date(now + INVITE_TTL_MS).toISOString();
    await this.store.createInvite({ token_hash: hashToken(token), user_id: user.id, created_at: new Date(now).toISOString(), expires_at, used_at: null });
    return { token, expires_at };
  }

  /** Sets the invited user's password (once per invite) and signs them in. */
  async acceptInvite(token: string, password: string): Promise<StartedSession> {
    checkPassword(password);
    const user = await this.store.redeemInvite(hashToken(token), await hashPassword(password), new Date().toISOString());
    if (!user) throw new AppError('INVITE_NOT_FOUND', 'This invite link is unknown, was already used or has expired', 'Ask the admin for a new invite link.');
    if (user.disabled_at) throw new AppError('INVALID_CREDENTIALS', 'This user is disabled', 'Ask the admin to enable the user.');
    return this.start(user);
  }

  /**
   * Admin only: disables (sessions revoked, tokens refused at once) or enables a user, and sets or
   * clears its sign-in email.
   */
  async updateUser(actor: User, userId: string, patch: { disabled?: boolean; email?: string | null }): Promise<User> {
    requireAdmin(actor);
    if (!(await this.users.getUser(userId))) throw new AppError('USER_NOT_FOUND', `No user has id "${userId}"`, 'List users with GET /api/v1/users.');
    if (patch.disabled && actor.id === userId) throw new AppError('INVALID_STATE', 'You cannot disable yourself', 'Sign in as another admin to disable this user.');
    if (patch.email !== undefined) {
      try {
        await this.store.setEmail(userId, patch.email);
      } catch (err) {
        if (err instanceof UniqueViolationError) throw new AppError('CONFLICT', `Another user has the email "${patch.email}"`, 'Pick another email.');
        throw err;
      }
    }
    if (patch.disabled !== undefined) await this.store.setDisabled(userId, patch.disabled ? new Date().toISOString() : null);
    if (patch.disabled) this.log.info({ userId, by: actor.id }, 'user disabled');
    return (await this.users.getUser(userId))!;
  }

  /** The caller changes their own password (the current one is required when one is set). */
  async changePassword(user: User, current: string | undefined, next: string): Promise<void> {
    checkPassword(next);
    const creds = await this.store.findUserByIdentity(user.name);
    if (creds?.password_hash && !(current !== undefined && (await verifyPassword(current, creds.password_hash)))) {
      throw new AppError('INVALID_CREDENTIALS', 'The current password is wrong', 'Type your current password.');
    }
    await this.store.setPassword(user.id, await hashPassword(next));
  }

  private async checkCredentials(input: LoginInput): Promise<User | undefined> {
    if (input.token) {
      try {
        return await this.authenticateToken(`Bearer ${input.token}`);
      } catch (err) {
        if (err instanceof AppError) return undefined;
        throw err;
      }
    }
    const creds = input.identity ? await this.store.findUserByIdentity(input.identity) : undefined;
    // Verified against a dummy hash when there is no user or no password, so timing tells nothing.
    const ok = await verifyPassword(input.password ?? '', creds?.password_hash ?? DUMMY_HASH);
    if (!ok || !creds || !creds.password_hash || creds.user.disabled_at) return undefined;
    return creds.user;
  }

  private async start(user: User): Promise<StartedSession> {
    const secret = randomBytes(32).toString('base64url');
    const csrf_token = randomBytes(24).toString('base64url');
    const now = Date.now();
    const expires_at = new Date(now + this.opts.sessionTtlMs).toISOString();
    await this.store.createSession({ id_hash: hashToken(secret), user_id: user.id, csrf_token, created_at: new Date(now).toISOString(), expires_at, revoked_at: null });
    return { secret, csrf_token, user, expires_at };
  }
}

function checkPassword(password: string): void {
  if (password.length < PASSWORD_LIMITS.min || password.length > PASSWORD_LIMITS.max) {
    throw new AppError('VALIDATION_ERROR', `password: must be ${PASSWORD_LIMITS.min} to ${PASSWORD_LIMITS.max} characters`, 'Pick a longer password.');
  }
}

function requireAdmin(user: User): void {
  if (!user.admin) throw new AppError('FORBIDDEN', 'Only an admin may manage users', 'Sign in as an admin.');
}
