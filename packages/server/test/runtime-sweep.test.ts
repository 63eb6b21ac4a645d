/**
 * Crash recovery: a daemon killed with SIGKILL leaves sandboxes behind; the next init() of the same
 * instance removes all of it, and never touches another instance's sandboxes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createContainerDriver } from '../src/runtime/drivers/container/driver.js';
import { instancePrefix } from '../src/host/instance.js';
import { containerTestDriver, ensureImage, IMAGE_DIR, instanceLeftovers, run, SMALL, testLog, type TestDriver } from './runtime-conformance.test.js';

const driverModule = fileURLToPath(new URL('../src/runtime/drivers/container/driver.js', import.meta.url));

/** Starts a driver in a child process, creates sandboxes, reports their ids, then waits to be killed. */
function crashingDaemon(dataDir: string, count: number): Promise<{ ids: string[]; kill: () => Promise<void> }> {
  const code = `
    import pino from 'pino';
    import { createContainerDriver } from ${JSON.stringify(driverModule)};
    const d = createContainerDriver({ dataDir: ${JSON.stringify(dataDir)}, imageDir: ${JSON.stringify(IMAGE_DIR)},
      instance: ${JSON.stringify(instancePrefix(dataDir))}, log: pino({ level: 'warn' }, pino.destination(2)) });
    await d.init();
    const ids = [];
    for (let i = 0; i < ${count}; i++) {
      const sb = await d.create({ limits: ${JSON.stringify(SMALL)}, network: i === 0 });
      await sb.exec({ script: 'sleep 1000 & echo started' }, () => {});
      ids.push(sb.id);
    }
    console.log('IDS ' + JSON.stringify(ids));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n').find((l) => l.startsWith('IDS '));
      if (line) {
        resolve({
          ids: JSON.parse(line.slice(4)) as string[],
          kill: () =>
            new Promise((ok) => {
              child.once('exit', () => ok());
              child.kill('SIGKILL');
            }),
        });
      }
    });
    child.once('exit', (c) => reject(new Error(`the crashing daemon exited early (${c})`)));
  });
}

describe('start-up sweep after a crash', { timeout: 300_000 }, () => {
  const dirs: string[] = [];
  let bystander: TestDriver | undefined;
  after(async () => {
    await bystander?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('init() removes containers, mounts, loop devices, cgroups and networks a killed daemon left', async () => {
    await ensureImage();
    // Another instance's sandbox must survive the sweep.
    bystander = await containerTestDriver({ network: false });
    await bystander.driver.init();
    const other = await bystander.driver.create({ limits: SMALL, network: false });

    const dataDir = await mkdtemp(join(tmpdir(), 'mags-crash-'));
    dirs.push(dataDir);
    const instance = instancePrefix(dataDir);
    const crashed = await crashingDaemon(dataDir, 2);
    await crashed.kill();
    assert.ok(crashed.ids.every((id) => existsSync(join(dataDir, 'runtime', 'sb', id))), 'the crash left sandbox directories');
    assert.ok((await instanceLeftovers(dataDir, instance)).length > 0, 'the crash left host resources');

    const driver = createContainerDriver({ dataDir, imageDir: IMAGE_DIR, instance, log: testLog });
    try {
      await driver.init();
      for (const id of crashed.ids) {
        assert.ok(!existsSync(join(dataDir, 'runtime', 'sb', id)));
        assert.ok(!existsSync(join(dataDir, 'runtime', 'crun', id)));
        assert.ok(!existsSync(join('/run/mags', instance, 'crun', id)));
        for (const h of await readdir('/sys/fs/cgroup')) assert.ok(!existsSync(join('/sys/fs/cgroup', h, instance, id)), `cgroup ${h}/${id} left`);
      }
      // While the driver runs, its image mount, its lxcfs view, the uid slots it made for the sandboxes
      // above, the (empty) instance parent cgroups and the cgroup of its background work are expected.
      const leftovers = (await instanceLeftovers(dataDir, instance)).filter(
        (l) => !l.includes(join(dataDir, 'runtime', 'image')) && !l.endsWith(`/${instance}`) && !l.endsWith(`/${instance}.maint`) && !l.endsWith(join('/run/mags', instance, 'lxcfs')) && !l.includes(join('/run/mags', instance, 'slots')),
      );
      assert.deepEqual(leftovers, []);
      // The crashed daemon's lxcfs is gone: only the new driver's runs.
      const lxcfs = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && (() => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(join('/run/mags', instance, 'lxcfs')); } catch { return false; } })());
      assert.ok(lxcfs.length <= 1, `lxcfs processes of the instance: ${lxcfs.join(', ')}`);
      // Per-sandbox runtime files (crun state, mount points, agent socket) live on the instance's tmpfs.
      const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
      const own = mountinfo.split('\n').filter((l) => l.split(' ')[4] === join('/run/mags', instance));
      assert.equal(own.length, 1, 'one mount at /run/mags/<instance>');
      assert.match(own[0]!, / - tmpfs /);
      // The swept instance works again.
      const sb = await driver.create({ limits: SMALL, network: false });
      assert.deepEqual((await run(sb, 'echo again')).stdout, ['again']);
    } finally {
      await driver.shutdown();
    }
    assert.deepEqual(await instanceLeftovers(dataDir, instance), []);
    assert.deepEqual((await run(other, 'echo bystander')).stdout, ['bystander']);
  });
});
