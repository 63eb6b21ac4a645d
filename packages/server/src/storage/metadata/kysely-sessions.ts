import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { InviteRecord, SessionRecord, SessionStore, UserCredentials } from './sessions.js';
import { UniqueViolationError, type User } from './store.js';

/** Passwords, sessions and invites on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselySessionStore implements SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  async findUserByIdentity(identity: string): Promise<UserCredentials | undefined> {
    const byName = await this.db.selectFrom('users').selectAll().where('name', '=', identity).executeTakeFirst();
    const row = byName ?? (identity.includes('@') ? await this.db.selectFrom('users').selectAll().where('email', '=', identity.toLowerCase()).executeTakeFirst() : undefined);
    return row && { user: toUser(row), password_hash: row.password_hash };
  }

  async setPassword(userId: string, passwordHash: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', userId).execute();
  }

  async setEmail(userId: string, email: string | null): Promise<void> {
    try {
      await this.db.updateTable('users').set({ email: email?.toLowerCase() ?? null }).where('id', '=', userId).execute();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE') throw new UniqueViolationError(`the email "${email}" is taken`);
      throw err;
    }
  }

  async setDisabled(userId: string, disabledAt: string | null): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const res = await trx.updateTable('users').set({ disabled_at: disabledAt }).where('id', '=', userId).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      if (disabledAt) {
        await trx.updateTable('sessions').set({ revoked_at: disabledAt }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
      }
      return true;
    });
  }

  async createSession(session: SessionRecord): Promise<void> {
    await this.db.insertInto('sessions').values(session).execute();
  }

  async findSession(idHash: string, now: string): Promise<{ session: SessionRecord; user: User } | undefined> {
    const session = await this.db
      .selectFrom('sessions')
      .selectAll()
      .where('id_hash', '=', idHash)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (!session) return undefined;
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', session.user_id).where('disabled_at', 'is', null).executeTakeFirst();
    return row && { session, user: toUser(row) };
  }

  async revokeSession(idHash: string, at: string): Promise<void> {
    await this.db.updateTable('sessions').set({ revoked_at: at }).where('id_hash', '=', idHash).where('revoked_at', 'is', null).execute();
  }

  async createInvite(invite: InviteRecord): Promise<void> {
    await this.db.insertInto('invites').values(invite).execute();
  }

  async redeemInvite(tokenHash: string, passwordHash: string, now: string): Promise<User | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('invites')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return undefined;
      const invite = await trx.selectFrom('invites').select('user_id').where('token_hash', '=', tokenHash).executeTakeFirstOrThrow();
      await trx.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', invite.user_id).execute();
      const row = await trx.selectFrom('users').selectAll().where('id', '=', invite.user_id).executeTakeFirst();
      return row && toUser(row);
    });
  }
}

function toUser(r: { id: string; name: string; admin: number; created_at: string; email: string | null; disabled_at: string | null }): User {
  return { id: r.id, name: r.name, admin: Number(r.admin) === 1, created_at: r.created_at, email: r.email, disabled_at: r.disabled_at };
}
