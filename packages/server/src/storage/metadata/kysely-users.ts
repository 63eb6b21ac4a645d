import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { UniqueViolationError, type TokenRecord, type User, type UserStore } from './store.js';

/** Users and tokens on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyUserStore implements UserStore {
  constructor(private readonly db: Kysely<Database>) {}

  async createUser(user: User): Promise<void> {
    await this.wrapUnique(`a user named "${user.name}" already exists`, () =>
      this.db.insertInto('users').values(userRow(user)).execute(),
    );
  }

  async createUserWithToken(user: User, token: TokenRecord): Promise<void> {
    await this.wrapUnique(`a user named "${user.name}" already exists`, () =>
      this.db.transaction().execute(async (trx) => {
        await trx.insertInto('users').values(userRow(user)).execute();
        await trx.insertInto('tokens').values(token).execute();
      }),
    );
  }

  async getUser(id: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toUser(row);
  }

  async getUserByName(name: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toUser(row);
  }

  async listUsers(): Promise<User[]> {
    const rows = await this.db.selectFrom('users').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(toUser);
  }

  async countUsers(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async createToken(token: TokenRecord): Promise<void> {
    await this.db.insertInto('tokens').values(token).execute();
  }

  async findToken(tokenHash: string): Promise<{ token: TokenRecord; user: User } | undefined> {
    const token = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!token) return undefined;
    const user = await this.getUser(token.user_id);
    // A disabled user's tokens stop working at once.
    return user && !user.disabled_at ? { token, user } : undefined;
  }

  async touchToken(id: string, at: string): Promise<void> {
    await this.db.updateTable('tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  async listTokens(userId: string): Promise<TokenRecord[]> {
    return this.db
      .selectFrom('tokens')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  async revokeToken(userId: string, id: string, at: string): Promise<boolean> {
    const res = await this.db
      .updateTable('tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  private async wrapUnique<T>(message: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new UniqueViolationError(message);
      }
      throw err;
    }
  }
}

function userRow(u: User) {
  return { id: u.id, name: u.name, admin: u.admin ? 1 : 0, created_at: u.created_at };
}

function toUser(r: { id: string; name: string; admin: number; created_at: string; email?: string | null; disabled_at?: string | null }): User {
  return { id: r.id, name: r.name, admin: Number(r.admin) === 1, created_at: r.created_at, email: r.email ?? null, disabled_at: r.disabled_at ?? null };
}
