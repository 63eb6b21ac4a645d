import { Command, InvalidArgumentError } from 'commander';
import { action, client, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

type Flags = ConnectionFlags & { json?: boolean };

export function userCommand(): Command {
  const cmd = new Command('user').description('Create and list users of the server (admin token needed)');
  withExamples(cmd, ['mags user create alice', 'mags user create ops --admin', 'mags user list']);

  const create = new Command('create')
    .description("Create a user; its first token is printed on stdout (shown once)")
    .argument('<name>', 'user name')
    .option('--admin', 'the user may manage other users');
  withJson(withConnection(create));
  withExamples(create, ['mags user create alice', 'mags user create ops --admin --json']);
  create.action(action(async (name: string, flags: Flags & { admin?: boolean }) => {
    const mags = await client(flags);
    const u = await mags.users.create(name, { admin: flags.admin });
    if (flags.json) return printJson(u);
    out(u.token);
    note(`Created user ${u.name} (${u.id})${u.admin ? ' with admin rights' : ''}. The token is shown only once;`);
    note(`they log in with: mags login --url ${mags.apiUrl} --token <token>`);
  }));

  const list = new Command('list').alias('ls').description('List all users');
  withJson(withConnection(list));
  withExamples(list, ['mags user list', 'mags user list --json']);
  list.action(action(async (flags: Flags) => {
    const mags = await client(flags);
    const r = await mags.users.list();
    if (flags.json) return printJson(r);
    out(table(['ID', 'NAME', 'ADMIN', 'CREATED'], r.users.map((u) => [u.id, u.name, u.admin ? 'yes' : 'no', u.created_at])));
  }));

  const quota = new Command('quota')
    .description("Show or set a user's quotas (without options: show); 'none' removes a limit")
    .argument('<user-id>', 'user id (see mags user list)')
    .option('--concurrent <n>', 'jobs running or queued at once', quotaArg(true))
    .option('--hours <n>', 'sandbox hours per month (UTC)', quotaArg(false))
    .option('--storage-gb <n>', 'stored workspace bytes, in GB', quotaArg(false));
  withJson(withConnection(quota));
  withExamples(quota, ['mags user quota 3f2a...', 'mags user quota 3f2a... --concurrent 4 --hours 100', 'mags user quota 3f2a... --storage-gb none']);
  quota.action(action(async (userId: string, flags: Flags & { concurrent?: QuotaFlag; hours?: QuotaFlag; storageGb?: QuotaFlag }) => {
    const mags = await client(flags);
    const setting = flags.concurrent !== undefined || flags.hours !== undefined || flags.storageGb !== undefined;
    if (setting) {
      // Options not given keep their current value.
      const { quota: cur } = await mags.users.quota(userId);
      await mags.users.setQuota(userId, {
        maxConcurrentSandboxes: limitOf(flags.concurrent, cur.max_concurrent_sandboxes),
        sandboxHoursPerMonth: limitOf(flags.hours, cur.sandbox_hours_per_month),
        storageGb: limitOf(flags.storageGb, cur.storage_gb),
      });
    }
    const q = await mags.users.quota(userId);
    if (flags.json) return printJson(q);
    const show = (v: number | null) => (v === null ? 'no limit' : String(v));
    out(table(['QUOTA', 'LIMIT', 'USED'], [
      ['concurrent sandboxes', show(q.quota.max_concurrent_sandboxes), q.used.concurrent_sandboxes],
      ['sandbox hours / month', show(q.quota.sandbox_hours_per_month), q.used.sandbox_hours_this_month],
      ['storage GB', show(q.quota.storage_gb), (q.used.storage_bytes / 1024 ** 3).toFixed(2)],
    ]));
  }));

  return cmd.addCommand(create).addCommand(list).addCommand(quota);
}

/** A quota option's value: a limit, or `none` for no limit (commander turns a parsed null into ''). */
type QuotaFlag = number | 'none';

/** The limit to send: the option's value, or the current one when the option was not given. */
function limitOf(flag: QuotaFlag | undefined, current: number | null): number | null {
  if (flag === undefined) return current;
  return flag === 'none' ? null : flag;
}

/** A quota value: a number >= 0 (whole when `int`), or `none` for no limit. */
function quotaArg(int: boolean): (value: string) => QuotaFlag {
  return (value) => {
    if (value === 'none') return 'none';
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (int && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`must be ${int ? 'a whole number' : 'a number'} >= 0, or none`);
    }
    return n;
  };
}
