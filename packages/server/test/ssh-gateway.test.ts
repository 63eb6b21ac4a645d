import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { blobOf, fingerprintOf, loadHostKey } from '../src/ssh/keys.js';
import { freePort } from './helpers/free-port.js';
import { createLivePlane, type LivePlane } from './helpers/live-fixture.js';

const run = promisify(execFile);

/**
 * The SSH gateway with Debian's OpenSSH client against a real sandbox (container driver): commands,
 * stderr, exit codes, stdin, big output, an interactive shell in tmux, scp/sftp, -L forwards,
 * refused keys and concurrent sessions. Needs root, the base image, ssh, scp, sftp and tmux.
 */
describe('SSH gateway (OpenSSH client, real sandboxes)', () => {
  let lp: LivePlane;
  let port: number;
  let dir: string;
  let devId: string;
  let otherId: string;
  let bobsId: string;
  let bob: string;
  let devKey: string;

  /** SSH access through the access endpoint; the private key written to a 0600 file. */
  const keyFile = async (name: string, jobId: string, token?: string): Promise<string> => {
    const r = await lp.call('POST', `/api/v1/mags-jobs/${jobId}/access`, { port: 22 }, token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const g = r.body as { success: boolean; ssh_private_key: string; ssh_host: string; ssh_port: number };
    assert.equal(g.success, true);
    assert.equal(g.ssh_host, '127.0.0.1');
    assert.equal(g.ssh_port, port);
    assert.match(g.ssh_private_key, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const f = join(dir, name);
    await writeFile(f, g.ssh_private_key, { mode: 0o600 });
    return f;
  };
  const sshArgs = (key: string, user = 'root') => [
    '-i', key, '-p', String(port), '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=accept-new',
    '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', '-F', '/dev/null', `${user}@127.0.0.1`,
  ];
  /** Runs `ssh ... command` and answers its exit code, stdout and stderr (stdin from `input`). */
  const ssh = (key: string, command: string, opts: { input?: Buffer | string; user?: string; extra?: string[] } = {}) =>
    new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve, reject) => {
      const p = spawn('ssh', [...(opts.extra ?? []), ...sshArgs(key, opts.user), command], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      p.stdout.on('data', (d: Buffer) => out.push(d));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
      p.stdin.end(opts.input ?? '');
    });

  before(async () => {
    lp = await createLivePlane();
    dir = lp.dir;
    port = lp.sshPort;
    bob = await lp.makeUser('bob');
    [devId, otherId, bobsId] = await Promise.all([lp.persistent('dev'), lp.persistent('other'), lp.persistent('bobs', {}, bob)]);
    devKey = await keyFile('dev_key', devId);
  });
  after(async () => {
    await lp?.close();
  });

  it('host key generated once, 0600, reused on the next load', async () => {
    const f = join(dir, 'ssh', 'host_ed25519_key');
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    const before1 = await readFile(f, 'utf8');
    assert.equal(await loadHostKey(f), before1);
  });

  it('runs commands: stdout, separate stderr, exit code', async () => {
    const r = await ssh(devKey, 'echo out; echo err >&2; hostname; exit 3');
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout.toString(), 'out\nmags-vm\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('stdin reaches the command and EOF ends it', async () => {
    const input = Buffer.alloc(1_000_000, 'x');
    const r = await ssh(devKey, 'wc -c', { input });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), '1000000');
  });

  it('10 MB of output arrive whole', async () => {
    const r = await ssh(devKey, 'head -c 10000000 /dev/urandom | tee /tmp/big | sha256sum >&2; cat /tmp/big');
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, 10_000_000);
    assert.equal(createHash('sha256').update(r.stdout).digest('hex'), r.stderr.split(' ')[0]);
  });

  it('wrong, revoked, another job\'s and another user\'s keys are refused', async () => {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'random_key')]);
    const wrong = await ssh(join(dir, 'random_key'), 'true');
    assert.equal(wrong.code, 255);
    assert.match(wrong.stderr, /Permission denied \(publickey\)/);

    // A job keeps its newest 5 keys: the sixth grant revokes the first.
    const first = await keyFile('first_key', devId);
    assert.equal((await ssh(first, 'true')).code, 0);
    for (let i = 0; i < 5; i++) await keyFile(`later_${i}`, devId);
    const revoked = await ssh(first, 'true');
    assert.equal(revoked.code, 255);
    assert.match(revoked.stderr, /Permission denied/);
    devKey = join(dir, 'later_4');

    // A key logs in to its own job only: naming another job as the user is refused.
    const otherKey = await keyFile('other_key', otherId);
    const wrongJob = await ssh(otherKey, 'true', { user: 'dev' });
    assert.equal(wrongJob.code, 255);
    assert.equal((await ssh(devKey, 'true', { user: 'dev' })).code, 0);
    assert.equal((await ssh(devKey, 'true', { user: devId })).code, 0);
    // Another user's key, offered for this user's job.
    const bobKey = await keyFile('bob_key', bobsId, bob);
    const foreign = await ssh(bobKey, 'true', { user: devId });
    assert.equal(foreign.code, 255);
    assert.equal((await ssh(bobKey, 'echo mine')).stdout.toString(), 'mine\n');
    // Stopping a job revokes its keys.
    assert.equal((await ssh(otherKey, 'true')).code, 0);
    assert.equal((await lp.call('POST', `/api/v1/mags-jobs/${otherId}/stop`)).status, 200);
    const fp = fingerprintOf(blobOf((await run('ssh-keygen', ['-y', '-f', otherKey])).stdout));
    for (let i = 0; i < 100 && !(await lp.stores.sshKeys.findSshKey(fp))?.revoked_at; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok((await lp.stores.sshKeys.findSshKey(fp))?.revoked_at, 'the stopped job\'s key is revoked in the database');
    const ended = await ssh(otherKey, 'true');
    assert.equal(ended.code, 255);
    assert.match(ended.stderr, /Permission denied/);
  });

  it('interactive shell in tmux: prompt mags-vm, stty size follows a resize, vi opens and quits, Ctrl-C interrupts', async () => {
    const session = `mags-ssh-test-${process.pid}`;
    const tmux = (...args: string[]) => run('tmux', args);
    const screen = async () => (await tmux('capture-pane', '-p', '-t', session)).stdout;
    const waitFor = async (re: RegExp, what: string) => {
      for (let i = 0; i < 100; i++) {
        const text = await screen();
        if (re.test(text)) return text;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`${what} did not appear; screen:\n${await screen()}`);
    };
    const cmd = ['ssh', '-tt', ...sshArgs(devKey)].map((a) => `'${a}'`).join(' ');
    await tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', cmd);
    try {
      await waitFor(/root@mags-vm/, 'the prompt');
      await tmux('send-keys', '-t', session, 'clear; stty size', 'Enter');
      await waitFor(/^30 100$/m, 'stty size 30 100');
      await tmux('resize-window', '-t', session, '-x', '120', '-y', '40');
      await tmux('send-keys', '-t', session, 'clear; stty size; echo TERM=$TERM', 'Enter');
      await waitFor(/^40 120$/m, 'stty size 40 120');
      await waitFor(/^TERM=(tmux|screen)/m, 'TERM passed from the client');
      await tmux('send-keys', '-t', session, 'clear; vi /tmp/vi-test', 'Enter');
      await waitFor(/^~\s*$/m, 'vi');
      await tmux('send-keys', '-t', session, 'i', 'hello from vi', 'Escape', ':wq', 'Enter');
      await tmux('send-keys', '-t', session, 'clear; cat /tmp/vi-test', 'Enter');
      await waitFor(/^hello from vi$/m, 'the file vi wrote');
      await tmux('send-keys', '-t', session, 'clear; sleep 30; echo after', 'Enter');
      await new Promise((r) => setTimeout(r, 300));
      await tmux('send-keys', '-t', session, 'C-c');
      await tmux('send-keys', '-t', session, 'echo interrupted', 'Enter');
      const text = await waitFor(/^interrupted$/m, 'the prompt after Ctrl-C');
      assert.doesNotMatch(text, /^after$/m);
      assert.equal(lp.plane.live.attachments(devId), 1, 'the open shell holds the attachment');
      await tmux('send-keys', '-t', session, 'exit', 'Enter');
      for (let i = 0; i < 50 && (await tmux('has-session', '-t', session).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await tmux('kill-session', '-t', session).catch(() => undefined); // already gone after exit
    }
  });

  it('scp (default SFTP mode, -s, and legacy -O) and sftp up and down keep the bytes, with nothing installed first', async () => {
    const has = await ssh(devKey, 'test -x /usr/lib/openssh/sftp-server && command -v scp');
    assert.equal(has.code, 0, 'the base image has sftp-server and scp');
    const up = join(dir, 'up.bin');
    const data = Buffer.alloc(3_000_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    await writeFile(up, data);
    const digest = createHash('sha256').update(data).digest('hex');
    const opts = ['-i', devKey, '-P', String(port), '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-F', '/dev/null'];
    for (const [mode, flags] of [['default', []], ['sftp', ['-s']], ['legacy', ['-O']]] as const) {
      const remote = `/root/up-${mode}.bin`;
      await run('scp', [...flags, ...opts, up, `root@127.0.0.1:${remote}`]);
      const sum = await ssh(devKey, `sha256sum ${remote}`);
      assert.equal(sum.stdout.toString().split(' ')[0], digest, `scp ${mode} up`);
      const down = join(dir, `down-${mode}.bin`);
      await run('scp', [...flags, ...opts, `root@127.0.0.1:${remote}`, down]);
      assert.ok((await readFile(down)).equals(data), `scp ${mode} down`);
    }
    const batch = join(dir, 'batch');
    await writeFile(batch, `put ${up} /root/sftp.bin\nget /root/sftp.bin ${join(dir, 'sftp-down.bin')}\nls -l /root/sftp.bin\n`);
    const sftp = await run('sftp', ['-b', batch, ...opts, 'root@127.0.0.1']);
    assert.match(sftp.stdout, /sftp\.bin/);
    assert.ok((await readFile(join(dir, 'sftp-down.bin'))).equals(data));
  });

  it('-L forwards reach apps in the sandbox (on its address and on 127.0.0.1 only); other hosts are refused', async () => {
    const start = await ssh(devKey, 'mkdir -p /tmp/www && echo served > /tmp/www/index.html && cd /tmp/www && (nohup python3 -m http.server 8080 >/dev/null 2>&1 &) && (nohup python3 -m http.server 8081 --bind 127.0.0.1 >/dev/null 2>&1 &) && sleep 1');
    assert.equal(start.code, 0, start.stderr);
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const fwd = spawn('ssh', ['-N', '-L', `${p1}:localhost:8080`, '-L', `${p2}:127.0.0.1:8081`, '-L', `${p3}:example.com:80`, '-o', 'ExitOnForwardFailure=yes', ...sshArgs(devKey)], { stdio: 'ignore' });
    try {
      const get = async (p: number) => {
        for (let i = 0; ; i++) {
          try {
            return await (await fetch(`http://127.0.0.1:${p}/`)).text();
          } catch (err) {
            if (i > 50) throw err;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      };
      assert.equal(await get(p1), 'served\n');
      assert.equal(await get(p2), 'served\n');
      await assert.rejects(fetch(`http://127.0.0.1:${p3}/`));
    } finally {
      fwd.kill();
      await ssh(devKey, 'pkill -f http.server; true');
    }
  });

  it('20 concurrent sessions, each with its own output; attachments released after', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => ssh(devKey, `sleep 0.5; echo session-${i}`)));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), `session-${i}\n`);
    });
    for (let i = 0; i < 50 && lp.plane.live.attachments(devId) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(lp.plane.live.attachments(devId), 0);
    assert.equal(lp.ssh.connections, 0);
  });
});
