import { Command, Option } from 'commander';
import type { WebhookEndpoint } from '@mags/sdk';
import { action, client, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

const EVENTS = ['job.completed', 'job.failed', 'job.sleeping', 'workspace.synced'] as const;

/** `mags webhook add|list|remove|test|deliveries|redeliver|enable|signing-key`. */
export function webhookCommand(): Command {
  const cmd = new Command('webhook').description('Signed webhooks when your jobs end and workspaces sync (Standard Webhooks)');

  const add = new Command('add')
    .description('Add an endpoint; prints its signing secret once')
    .argument('<url>', 'http(s) URL the events are POSTed to')
    .addOption(new Option('--event <type>', 'event to send (repeatable; default all)').choices([...EVENTS]).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]))
    .option('--description <text>', 'a note for yourself');
  withJson(withConnection(add));
  withExamples(add, ['mags webhook add https://hooks.example.com/mags', 'mags webhook add https://hooks.example.com/mags --event job.failed']);
  add.action(action(async (url: string, flags: ConnectionFlags & { json?: boolean; event?: Array<(typeof EVENTS)[number]>; description?: string }) => {
    const r = await (await client(flags)).webhookCreate(url, { events: flags.event, description: flags.description });
    if (flags.json) return printJson(r);
    out(`Added webhook ${r.id} -> ${r.url} (${r.events.join(', ')})`);
    out(`Signing secret (shown once; verify deliveries with it): ${r.secret}`);
  }));

  const list = new Command('list').alias('ls').description('List your endpoints and their status');
  withJson(withConnection(list));
  list.action(action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).webhookList();
    if (flags.json) return printJson(r);
    if (r.webhooks.length === 0) return note('No webhooks yet. Add one with: mags webhook add https://...');
    out(table(['ID', 'URL', 'EVENTS', 'STATUS', 'FAILURES'], r.webhooks.map((w: WebhookEndpoint) => [w.id, w.url, w.events.join(','), w.status === 'disabled' ? `disabled: ${w.disabled_reason ?? ''}` : w.status, String(w.consecutive_failures)])));
  }));

  const remove = new Command('remove').alias('rm').description('Remove an endpoint').argument('<id>', 'endpoint id');
  withJson(withConnection(remove));
  remove.action(action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).webhookDelete(id);
    if (flags.json) return printJson(r);
    out(`Removed webhook ${id}`);
  }));

  const test = new Command('test').description('Send a webhook.test event to an endpoint').argument('<id>', 'endpoint id');
  withJson(withConnection(test));
  test.action(action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).webhookTest(id);
    if (flags.json) return printJson(r);
    out(`Queued test delivery ${r.id}; see it with: mags webhook deliveries ${id}`);
  }));

  const deliveries = new Command('deliveries').description("An endpoint's delivery log, newest first").argument('<id>', 'endpoint id');
  withJson(withConnection(deliveries));
  deliveries.action(action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).webhookDeliveries(id);
    if (flags.json) return printJson(r);
    if (r.deliveries.length === 0) return note('No deliveries yet.');
    out(table(['ID', 'EVENT', 'STATUS', 'ATTEMPTS', 'HTTP', 'LAST ERROR', 'CREATED'], r.deliveries.map((d) => [d.id, d.event_type, d.status, String(d.attempts), d.last_status_code === null ? '' : String(d.last_status_code), d.last_error ?? '', d.created_at])));
  }));

  const redeliver = new Command('redeliver').description('Send a delivery again (same webhook-id)').argument('<id>', 'endpoint id').argument('<delivery>', 'delivery id (msg_...)');
  withJson(withConnection(redeliver));
  redeliver.action(action(async (id: string, delivery: string, flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).webhookRedeliver(id, delivery);
    if (flags.json) return printJson(r);
    out(`Queued ${r.id} again`);
  }));

  const enable = new Command('enable').description('Enable an endpoint again (after it was disabled for failing)').argument('<id>', 'endpoint id');
  withJson(withConnection(enable));
  enable.action(action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).webhookUpdate(id, { enabled: true });
    if (flags.json) return printJson(r);
    out(`Enabled webhook ${r.id}`);
  }));

  const key = new Command('signing-key').description("Create or replace the key that signs deliveries to jobs' own --webhook-url; prints it once");
  withJson(withConnection(key));
  key.action(action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).webhookSigningKey();
    if (flags.json) return printJson(r);
    out(`Signing key (shown once; deliveries to a job's or schedule's webhook_url are signed with it): ${r.secret}`);
  }));

  for (const c of [add, list, remove, test, deliveries, redeliver, enable, key]) cmd.addCommand(c);
  return cmd;
}
