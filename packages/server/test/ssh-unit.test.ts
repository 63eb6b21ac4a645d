import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import type { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { silentLogger } from '../src/logger.js';
import type { LiveSandboxes } from '../src/sandboxes/live.js';
import { AppError } from '../src/services/errors.js';
import { CappedText } from '../src/services/exec.js';
import { TerminalTickets } from '../src/services/terminal.js';
import { SshGateway } from '../src/ssh/gateway.js';
import { SSH_KEYS_PER_JOB, SshGrant, blobOf, fingerprintOf, generateEd25519, publicKeyOf } from '../src/ssh/keys.js';
import { OutputFlow } from '../src/ssh/session.js';
import type { Job } from '../src/storage/metadata/store.js';
import { createHarness, type Harness } from './helpers/harness.js';

const { Client, utils } = ssh2;

/** A lifecycle manager double: every job is `running`, attaching is refused (no sandboxes here). */
const noSandboxes: LiveSandboxes = {
  attach: async () => {
    throw new AppError('JOB_NOT_RUNNING', 'not running in this test');
  },
  touch: () => undefined,
  state: () => 'running',
  onChange: () => () => undefined,
};

describe('exec output caps and terminal tickets', () => {
  it('CappedText keeps characters whole across chunks and cuts at the cap', () => {
    const t = new CappedText(1024);
    const euro = Buffer.from('€'); // 3 bytes
    t.push(euro.subarray(0, 1));
    t.push(euro.subarray(1));
    assert.equal(t.text(), '€');
    const c = new CappedText(5);
    c.push(Buffer.from('abc'));
    c.push(Buffer.from('defgh'));
    c.push(Buffer.from('ij'));
    assert.equal(c.text(), 'abcde');
    assert.equal(c.truncated, true);
  });

  it('tickets are single-use and expire', async () => {
    const user = { id: 'u1', name: 'u', admin: false, created_at: '' };
    const tickets = new TerminalTickets(50);
    const { ticket, expires_in } = tickets.issue(user, 'job1');
    assert.match(ticket, /^mtt_[A-Za-z0-9_-]{32}$/);
    assert.equal(expires_in, 0);
    assert.deepEqual(tickets.redeem(ticket), { user, jobId: 'job1' });
    assert.equal(tickets.redeem(ticket), undefined);
    const late = tickets.issue(user, 'job1').ticket;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(tickets.redeem(late), undefined);
    assert.equal(tickets.redeem('mtt_nope'), undefined);
  });
});

describe('ed25519 key generation', () => {
  it('every generated pair loads back (ssh2 alone makes a broken key about 1 time in 230)', () => {
    // 3000 pairs: with the retry removed, the chance that all of them are good is about 2e-6.
    for (let i = 0; i < 3000; i++) {
      const pair = generateEd25519('loop');
      const k = utils.parseKey(pair.private);
      assert.ok(!(k instanceof Error) && !Array.isArray(k), `pair ${i} does not parse: ${String(k)}`);
      assert.equal(publicKeyOf(pair.private), pair.public.trim().split(/\s+/).slice(0, 2).join(' '));
      assert.equal(blobOf(pair.public).length, 51);
    }
  });
});

describe('SSH keys and the gateway without sandboxes', () => {
  let h: Harness;
  let job: Job;
  let grant: SshGrant;
  let gateway: SshGateway;
  let port: number;
  const hostKey = generateEd25519('test').private;

  before(async () => {
    h = await createHarness();
    const r = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: { authorization: `Bearer ${h.adminToken}` }, payload: { script: 'true', type: 'inline', persistent: true, name: 'dev' } });
    job = (await h.stores.jobs.getJob((r.json() as { request_id: string }).request_id))!;
    gateway = new SshGateway({ keys: h.stores.sshKeys, jobs: h.stores.jobs, live: noSandboxes, hostKey, log: silentLogger(), limits: { maxAuthAttempts: 3, loginGraceMs: 2000 } });
    port = await gateway.listen(0, '127.0.0.1');
    grant = new SshGrant({ keys: h.stores.sshKeys, port: () => port, hostPublicKey: () => publicKeyOf(hostKey) });
  });
  after(async () => {
    await gateway?.close();
    await h?.close();
  });

  it('a grant answers an OpenSSH ed25519 key; only its public half and fingerprint are stored', async () => {
    const g = (await grant.grant(job, 22, { requestHost: 'mags.example.com:8090' })) as Record<string, string | number>;
    assert.equal(g.ssh_host, 'mags.example.com');
    assert.equal(g.ssh_port, port);
    assert.equal(g.ssh_user, 'root');
    assert.match(String(g.ssh_host_key), /^ssh-ed25519 AAAA/);
    const key = utils.parseKey(String(g.ssh_private_key));
    assert.ok(!(key instanceof Error) && !Array.isArray(key));
    assert.equal(key.type, 'ssh-ed25519');
    const fp = fingerprintOf(key.getPublicSSH());
    const row = (await h.stores.sshKeys.findSshKey(fp))!;
    assert.equal(row.job_id, job.request_id);
    assert.equal(row.revoked_at, null);
    assert.ok(!JSON.stringify(row).includes('PRIVATE'));
    assert.equal(fingerprintOf(blobOf(row.public_key)), fp);
    const v6 = (await grant.grant(job, 22, { requestHost: '[::1]:8090' })) as Record<string, string>;
    assert.equal(v6.ssh_host, '::1');
    const named = await new SshGrant({ keys: h.stores.sshKeys, port: () => port, host: 'ssh.example.com' }).grant(job, 22, { requestHost: 'x:1' });
    assert.equal(named.ssh_host, 'ssh.example.com');
  });

  it(`a job keeps its ${SSH_KEYS_PER_JOB} newest keys; revokeJob revokes the rest`, async () => {
    const fps: string[] = [];
    for (let i = 0; i < SSH_KEYS_PER_JOB + 2; i++) {
      const g = await grant.grant(job, 22, {});
      fps.push(fingerprintOf(blobOf(publicKeyOf(String(g.ssh_private_key)))));
    }
    const rows = await Promise.all(fps.map((f) => h.stores.sshKeys.findSshKey(f)));
    assert.deepEqual(rows.map((r) => r!.revoked_at !== null), [true, true, false, false, false, false, false]);
    assert.equal(await grant.revokeJob(job.request_id), SSH_KEYS_PER_JOB);
    assert.equal(await grant.revokeJob(job.request_id), 0);
  });

  const tryLogin = (cfg: Record<string, unknown>) =>
    new Promise<string>((resolve) => {
      const c = new Client();
      c.on('ready', () => {
        c.end();
        resolve('ready');
      });
      c.on('error', (err: Error & { level?: string }) => resolve(`${err.level ?? 'error'}: ${err.message}`));
      c.connect({ host: '127.0.0.1', port, username: 'root', readyTimeout: 5000, ...cfg });
    });

  it('refuses passwords, unknown keys and revoked keys; survives garbage and silent clients', async () => {
    assert.match(await tryLogin({ password: 'x' }), /authentication methods failed/);
    assert.match(await tryLogin({ privateKey: generateEd25519('test').private }), /authentication methods failed/);
    const g = await grant.grant(job, 22, {});
    await grant.revokeJob(job.request_id);
    assert.match(await tryLogin({ privateKey: String(g.ssh_private_key) }), /authentication methods failed/);
    // Garbage instead of an SSH handshake, and a client that never speaks: each ends alone.
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write(Buffer.alloc(70_000, 0xff)));
      s.resume();
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    const silent = connect(port, '127.0.0.1');
    silent.resume();
    const silentClosed = new Promise<void>((resolve) => silent.on('close', () => resolve()));
    silent.on('error', () => undefined); // reset by the server at the login grace time
    const fresh = await grant.grant(job, 22, {});
    // An accepted key whose job cannot be attached still logs in; its sessions report the error.
    assert.equal(await tryLogin({ privateKey: String(fresh.ssh_private_key) }), 'ready');
    await silentClosed;
    assert.equal(gateway.connections, 0);
  });

  it('limits: connections per user, idle connections are closed', async () => {
    const limited = new SshGateway({ keys: h.stores.sshKeys, jobs: h.stores.jobs, live: noSandboxes, hostKey, log: silentLogger(), limits: { maxConnectionsPerUser: 1, idleTimeoutMs: 400 } });
    const lport = await limited.listen(0, '127.0.0.1');
    try {
      const g = await grant.grant(job, 22, {});
      const first = new Client();
      const firstClosed = new Promise<number>((resolve) => {
        let readyAt = 0;
        first.on('ready', () => (readyAt = Date.now()));
        first.on('close', () => resolve(Date.now() - readyAt));
      });
      first.on('error', (err: Error) => assert.fail(`first connection: ${err.message}`));
      await new Promise<void>((resolve) => {
        first.once('ready', () => resolve());
        first.connect({ host: '127.0.0.1', port: lport, username: 'root', privateKey: String(g.ssh_private_key) });
      });
      // The second connection of the same user is over the limit.
      const second = await new Promise<string>((resolve) => {
        const c = new Client();
        c.on('ready', () => {
          c.end();
          resolve('ready');
        });
        c.on('error', (err: Error) => resolve(err.message));
        c.connect({ host: '127.0.0.1', port: lport, username: 'root', privateKey: String(g.ssh_private_key), readyTimeout: 5000 });
      });
      assert.notEqual(second, 'ready');
      // The first one moves no bytes and is closed after the idle time.
      const openFor = await firstClosed;
      assert.ok(openFor >= 350 && openFor < 5000, `closed after ${openFor} ms`);
    } finally {
      await limited.close();
    }
  });
});

describe('SSH output flow', () => {
  /** A writable that takes `room` writes, then answers false until `drain()`. */
  const fullAfter = (room: number) => {
    const s = new EventEmitter() as EventEmitter & { write(d: Buffer): boolean; drain(): void; written: number };
    let left = room;
    s.written = 0;
    s.write = (d: Buffer) => {
      s.written += d.length;
      return --left > 0;
    };
    s.drain = () => {
      left = room;
      s.emit('drain');
    };
    return s;
  };

  it('pauses the process when a stream is full and resumes it once every full stream drained', () => {
    const calls: string[] = [];
    const channel = new EventEmitter();
    const flow = new OutputFlow({ pause: () => calls.push('pause'), resume: () => calls.push('resume') }, channel);
    const out = fullAfter(2);
    const err = fullAfter(1);
    flow.write(out as unknown as Writable, Buffer.from('a'));
    assert.deepEqual(calls, []);
    flow.write(out as unknown as Writable, Buffer.from('b'));
    assert.deepEqual(calls, ['pause']);
    flow.write(err as unknown as Writable, Buffer.from('c'));
    assert.deepEqual(calls, ['pause', 'pause']);
    out.drain();
    assert.deepEqual(calls, ['pause', 'pause'], 'stderr is still full');
    err.drain();
    assert.deepEqual(calls, ['pause', 'pause', 'resume']);
    assert.equal(out.written + err.written, 3, 'nothing is dropped');
  });

  it('a closed channel resumes the process for good and takes no more writes', () => {
    const calls: string[] = [];
    const channel = new EventEmitter();
    const flow = new OutputFlow({ pause: () => calls.push('pause'), resume: () => calls.push('resume') }, channel);
    const out = fullAfter(1);
    flow.write(out as unknown as Writable, Buffer.from('a'));
    channel.emit('close');
    assert.deepEqual(calls, ['pause', 'resume']);
    flow.write(out as unknown as Writable, Buffer.from('b'));
    out.drain();
    assert.deepEqual(calls, ['pause', 'resume']);
    assert.equal(out.written, 1);
  });
});
