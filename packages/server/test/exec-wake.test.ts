import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createLivePlane, type LivePlane } from './helpers/live-fixture.js';

const run = promisify(execFile);

/**
 * Exec and SSH wake persistent sandboxes: a frozen one is thawed, a sleeping one (workspace synced,
 * sandbox stopped) gets a new sandbox on its workspace. Real sandboxes with short idle times.
 */
describe('exec and SSH wake frozen and sleeping sandboxes (real sandboxes)', () => {
  let lp: LivePlane;
  before(async () => {
    lp = await createLivePlane({ freezeAfterSeconds: 0.3, sleepAfterSeconds: 1.5 });
  });
  after(async () => {
    await lp?.close();
  });

  const exec = (id: string, command: string) => lp.call('POST', `/api/v1/mags-jobs/${id}/exec`, { command, timeout_seconds: 60 });

  it('exec thaws a frozen sandbox and wakes a sleeping one, keeping /root', async () => {
    const id = await lp.persistent('sleeper', { workspace_id: 'sleeper-ws' });
    const w = await exec(id, 'echo kept > /root/k.txt && echo ok');
    assert.equal(w.body.output, 'ok\n', JSON.stringify(w.body));
    await lp.waitState(id, 'frozen');
    const thawed = await exec(id, 'cat /root/k.txt');
    assert.equal(thawed.body.output, 'kept\n');
    await lp.waitState(id, 'sleeping');
    for (let i = 0; i < 100 && (await lp.call('GET', `/api/v1/mags-jobs/${id}/status`)).body.status !== 'sleeping'; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await lp.call('GET', `/api/v1/mags-jobs/${id}/status`)).body.status, 'sleeping');
    const woken = await exec(id, 'cat /root/k.txt; hostname');
    assert.equal(woken.status, 200, JSON.stringify(woken.body));
    assert.equal(woken.body.output, 'kept\nmags-vm\n');
    assert.equal((await lp.call('GET', `/api/v1/mags-jobs/${id}/status`)).body.status, 'running');
  });

  it('an SSH connection wakes a sleeping sandbox and holds it awake while open', async () => {
    const id = await lp.persistent('sshsleeper', { workspace_id: 'sshsleeper-ws' });
    const access = await lp.call('POST', `/api/v1/mags-jobs/${id}/access`, { port: 22 });
    const key = join(lp.dir, 'sleeper_key');
    await writeFile(key, access.body.ssh_private_key as string, { mode: 0o600 });
    await lp.waitState(id, 'sleeping');
    const args = ['-i', key, '-p', String(lp.sshPort), '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${join(lp.dir, 'kh')}`, '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-F', '/dev/null', 'root@127.0.0.1'];
    // Longer than the sleep time: the open session keeps the sandbox from freezing or sleeping.
    const r = await run('ssh', [...args, 'echo awake; sleep 3; echo still']);
    assert.equal(r.stdout, 'awake\nstill\n');
    assert.equal(lp.plane.live.state(id), 'running');
  });
});
