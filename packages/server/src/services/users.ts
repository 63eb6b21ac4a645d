import type { Logger } from 'pino';
import { UniqueViolationError, type TokenRecord, type User, type UserStore } from '../storage/metadata/store.js';
import { AppError } from './errors.js';
import { generateToken, hashToken, newId } from './tokens.js';

/** How often `last_used_at` is written for a busy token. */
const TOUCH_INTERVAL_MS = 60_000;

export interface CreatedToken {
  id: string;
  name: string;
  /** The token itself: shown once, never stored. */
  token: string;
  created_at: string;
}

/** Users and API tokens: authentication, token create/list/revoke, admin-only user management. */
export class UsersService {
  constructor(
    private readonly store: UserStore,
    private readonly log: Logger,
  ) {}

  /** The user of an `Authorization: Bearer <token>` header; throws AUTH_REQUIRED or INVALID_TOKEN. */
  async authenticate(authorization: string | undefined): Promise<User> {
    if (!authorization || authorization.trim() === '') {
      throw new AppError(
        'AUTH_REQUIRED',
        'API token required: send "Authorization: Bearer <token>"',
        'The admin token is in $MAGS_DATA_DIR/admin-token; create more with POST /api/v1/tokens.',
      );
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) {
      throw new AppError('AUTH_REQUIRED', 'API token required: the Authorization header must be "Bearer <token>"');
    }
    const found = await this.store.findToken(hashToken(m[1]!));
    if (!found) {
      throw new AppError('INVALID_TOKEN', 'Invalid API token: it is unknown or was revoked', 'Check MAGS_API_TOKEN or ~/.mags/config.json, or create a new token.');
    }
    const last = found.token.last_used_at ? Date.parse(found.token.last_used_at) : 0;
    if (Date.now() - last > TOUCH_INTERVAL_MS) {
      this.store.touchToken(found.token.id, new Date().toISOString()).catch((err: unknown) => {
        this.log.warn({ err, tokenId: found.token.id }, 'could not record token use');
      });
    }
    return found.user;
  }

  /**
   * On an empty database: creates the admin user and its token and returns them; otherwise null.
   */
  async bootstrapAdmin(): Promise<{ user: User; token: string } | null> {
    if ((await this.store.countUsers()) > 0) return null;
    const now = new Date().toISOString();
    const user: User = { id: newId(), name: 'admin', admin: true, created_at: now };
    const token = generateToken();
    await this.store.createUserWithToken(user, tokenRecord(user.id, 'admin', token, now));
    this.log.info({ userId: user.id }, 'created the admin user and its token');
    return { user, token };
  }

  async createToken(user: User, name: string | undefined): Promise<CreatedToken> {
    const now = new Date().toISOString();
    const token = generateToken();
    const rec = tokenRecord(user.id, name ?? 'token', token, now);
    await this.store.createToken(rec);
    return { id: rec.id, name: rec.name, token, created_at: now };
  }

  async listTokens(user: User): Promise<TokenRecord[]> {
    return this.store.listTokens(user.id);
  }

  async revokeToken(user: User, id: string): Promise<void> {
    const ok = await this.store.revokeToken(user.id, id, new Date().toISOString());
    if (!ok) throw new AppError('TOKEN_NOT_FOUND', `No token of yours has id "${id}"`, 'List your tokens with GET /api/v1/tokens.');
  }

  /** Admin only: a new user and its first token. */
  async createUser(actor: User, name: string, admin: boolean): Promise<{ user: User; token: string }> {
    requireAdmin(actor);
    const now = new Date().toISOString();
    const user: User = { id: newId(), name, admin, created_at: now };
    const token = generateToken();
    try {
      await this.store.createUserWithToken(user, tokenRecord(user.id, 'default', token, now));
    } catch (err) {
      if (err instanceof UniqueViolationError) {
        throw new AppError('CONFLICT', `A user named "${name}" already exists`, 'Pick another name.');
      }
      throw err;
    }
    return { user, token };
  }

  async listUsers(actor: User): Promise<User[]> {
    requireAdmin(actor);
    return this.store.listUsers();
  }
}

function requireAdmin(user: User): void {
  if (!user.admin) throw new AppError('FORBIDDEN', 'Only an admin may manage users', 'Use the admin token from $MAGS_DATA_DIR/admin-token.');
}

function tokenRecord(userId: string, name: string, token: string, now: string): TokenRecord {
  return { id: newId(), user_id: userId, name, token_hash: hashToken(token), created_at: now, last_used_at: null, revoked_at: null };
}
