/**
 * The runtime driver conformance suite. `runtimeConformance(name, factory)` runs the same tests
 * against any RuntimeDriver (the crun container driver here; a microVM driver later). Run directly
 * (node --test), this file checks the container driver on the real host: real crun, real image.
 * The helpers below (test drivers, leak checks) are shared with the hostile and pool tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { OutputLine, RuntimeDriver, Sandbox, SandboxLimits, SandboxSpec } from '../src/runtime/driver.js';
import { createContainerDriver } from '../src/runtime/drivers/container/driver.js';
import { buildImage, findImage } from '../src/runtime/image.js';
import { instancePrefix } from '../src/host/instance.js';
import { mountsUnder } from '../src/host/mounts.js';

const exec = promisify(execFile);
export const testLog = pino({ level: process.env.MAGS_TEST_LOG ?? 'warn' });
export const IMAGE_DIR = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';
export const SMALL: SandboxLimits = { vcpus: 1, memoryMb: 256, diskGb: 1, pids: 256 };

/** Builds the shared base image when missing (minutes the first time on a machine). */
export async function ensureImage(): Promise<void> {
  if (findImage(IMAGE_DIR)) return;
  await buildImage({ imageDir: IMAGE_DIR, onProgress: (m) => testLog.info(m), mirror: process.env.MAGS_DEBIAN_MIRROR });
}

export interface TestDriver {
  driver: RuntimeDriver;
  dataDir: string;
  instance: string;
  /** Shuts the driver down, checks the instance left nothing on the host, removes the data dir. */
  close(): Promise<void>;
}

/** A container driver on its own temp data dir; `network: false` = loopback-only sandboxes. */
export async function containerTestDriver(opts: { network?: boolean } = {}): Promise<TestDriver> {
  await ensureImage();
  const dataDir = await mkdtemp(join(tmpdir(), 'mags-rt-'));
  const instance = instancePrefix(dataDir);
  const driver = createContainerDriver({
    dataDir,
    imageDir: IMAGE_DIR,
    instance,
    log: testLog,
    ...(opts.network === false ? { network: null } : {}),
  });
  return {
    driver,
    dataDir,
    instance,
    async close() {
      try {
        await driver.shutdown();
        const left = await instanceLeftovers(dataDir, instance);
        assert.deepEqual(left, [], `the driver left host resources behind: ${left.join(', ')}`);
      } finally {
        await rm(dataDir, { recursive: true, force: true }).catch(() => {});
      }
    },
  };
}

/** Host resources of one sandbox that still exist (empty = destroyed cleanly). */
export async function sandboxLeftovers(dataDir: string, instance: string, id: string): Promise<string[]> {
  const left: string[] = [];
  for (const mp of await mountsUnder(dataDir)) if (mp.includes(id)) left.push(`mount ${mp}`);
  for (const h of await readdir('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', h, instance, id);
    if (existsSync(dir)) left.push(`cgroup ${dir}`);
  }
  if (existsSync(join(dataDir, 'runtime', 'sb', id))) left.push(`directory ${join(dataDir, 'runtime', 'sb', id)}`);
  if (existsSync(join('/run/mags', instance, id))) left.push(`directory ${join('/run/mags', instance, id)}`);
  for (const mp of await mountsUnder(join('/run/mags', instance))) if (mp.includes(id)) left.push(`mount ${mp}`);
  for (const crun of [join('/run/mags', instance, 'crun'), join(dataDir, 'runtime', 'crun')]) if (existsSync(join(crun, id))) left.push(`crun state ${id}`);
  if (existsSync(join('/var/run/netns', `${instance}-${id}`))) left.push(`netns ${instance}-${id}`);
  const loops = (await exec('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE'])).stdout;
  for (const l of loops.split('\n')) if (l.includes(id)) left.push(`loop ${l.trim()}`);
  const ps = (await exec('ps', ['-eo', 'pid,args'])).stdout;
  for (const l of ps.split('\n')) if (l.includes(id)) left.push(`process ${l.trim()}`);
  return left;
}

/** Everything of an instance still on the host after shutdown. */
export async function instanceLeftovers(dataDir: string, instance: string): Promise<string[]> {
  const left: string[] = [];
  for (const mp of await mountsUnder(dataDir)) left.push(`mount ${mp}`);
  for (const mp of await mountsUnder(join('/run/mags', instance))) left.push(`mount ${mp}`);
  if (existsSync(join('/run/mags', instance))) left.push(`directory ${join('/run/mags', instance)}`);
  for (const h of await readdir('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', h, instance);
    if (existsSync(dir)) left.push(`cgroup ${dir}`);
  }
  const loops = (await exec('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE'])).stdout;
  for (const l of loops.split('\n')) if (l.includes(dataDir)) left.push(`loop ${l.trim()}`);
  for (const crun of [join('/run/mags', instance, 'crun'), join(dataDir, 'runtime', 'crun')]) {
    for (const c of await readdir(crun).catch(() => [] as string[])) left.push(`crun state ${c}`);
  }
  for (const ns of await readdir('/var/run/netns').catch(() => [] as string[])) if (ns.startsWith(instance)) left.push(`netns ${ns}`);
  return left;
}

export interface Collected {
  stdout: string[];
  stderr: string[];
  lines: OutputLine[];
}

/** Runs a script and collects its output. */
export async function run(sb: Sandbox, script: string, extra: Partial<Parameters<Sandbox['exec']>[0]> = {}) {
  const out: Collected = { stdout: [], stderr: [], lines: [] };
  const result = await sb.exec({ script, ...extra }, (l) => {
    out.lines.push(l);
    out[l.stream].push(l.text);
  });
  return { ...result, ...out };
}

export type DriverFactory = () => Promise<TestDriver>;

/** The conformance suite every runtime driver passes. */
export function runtimeConformance(name: string, factory: DriverFactory, spec: Partial<SandboxSpec> = {}): void {
  describe(`runtime conformance: ${name}`, { timeout: 600_000 }, () => {
    let t: TestDriver;
    let sb: Sandbox;
    const newSpec = (limits: Partial<SandboxLimits> = {}): SandboxSpec => ({ ...spec, limits: { ...SMALL, ...limits } });

    before(async () => {
      t = await factory();
      await t.driver.init();
      sb = await t.driver.create(newSpec());
    });
    after(async () => {
      await t?.close();
    });

    it('health is ok after init', async () => {
      const h = await t.driver.health();
      assert.deepEqual(h.problems, []);
      assert.equal(h.ok, true);
    });

    it('echo hi', async () => {
      const r = await run(sb, 'echo hi');
      assert.equal(r.reason, 'exited');
      assert.equal(r.exitCode, 0);
      assert.deepEqual(r.stdout, ['hi']);
      assert.deepEqual(r.stderr, []);
    });

    it('exit codes and signals', async () => {
      assert.equal((await run(sb, 'exit 3')).exitCode, 3);
      assert.equal((await run(sb, 'false')).exitCode, 1);
      assert.equal((await run(sb, 'exit 255')).exitCode, 255);
      const killed = await run(sb, 'kill -9 $$');
      assert.equal(killed.reason, 'signaled');
      assert.equal(killed.signal, 'SIGKILL');
      assert.equal(killed.exitCode, null);
    });

    it('keeps stdout and stderr apart, in order, with timestamps', async () => {
      const r = await run(sb, 'echo a; echo b >&2; echo c; sleep 0.05; echo d >&2; sleep 0.05; printf "x\\ny"');
      assert.deepEqual(r.stdout, ['a', 'c', 'x', 'y']);
      assert.deepEqual(r.stderr, ['b', 'd']);
      const d = r.lines.find((l) => l.text === 'd')!;
      const x = r.lines.find((l) => l.text === 'x')!;
      assert.ok(r.lines.findIndex((l) => l.text === 'c') < r.lines.indexOf(d));
      assert.ok(r.lines.indexOf(d) < r.lines.indexOf(x));
      assert.ok(x.at.getTime() - d.at.getTime() >= 30, 'timestamps are taken when lines arrive');
    });

    it('passes environment variables; HOME, USER and PATH have defaults', async () => {
      const r = await run(sb, 'echo "$FOO|$EQ|$HOME|$USER|$PATH"', { env: { FOO: 'bar baz', EQ: 'a=b' } });
      assert.deepEqual(r.stdout, ['bar baz|a=b|/root|root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    });

    it('runs in /root by default, or in cwd', async () => {
      assert.deepEqual((await run(sb, 'pwd')).stdout, ['/root']);
      assert.deepEqual((await run(sb, 'pwd', { cwd: '/tmp' })).stdout, ['/tmp']);
      const missing = await run(sb, 'pwd', { cwd: '/nope' });
      assert.notEqual(missing.exitCode, 0);
      assert.match(missing.stderr.join('\n'), /cannot change directory to \/nope/);
    });

    it('hostname mags-vm, user root', async () => {
      assert.deepEqual((await run(sb, 'hostname; whoami; id -u')).stdout, ['mags-vm', 'root', '0']);
    });

    it('uname -a && cat /etc/os-release: Linux on Debian bookworm', async () => {
      const r = await run(sb, 'uname -a && cat /etc/os-release');
      assert.equal(r.exitCode, 0);
      assert.match(r.stdout[0]!, /^Linux mags-vm /);
      assert.ok(r.stdout.some((l) => l.includes('bookworm')));
    });

    it('python3, node, git, curl are installed', async () => {
      const r = await run(sb, 'python3 -c "print(sum(range(10)))"; node -e "console.log(6*7)"; git --version >/dev/null && curl --version >/dev/null && echo tools');
      assert.deepEqual(r.stdout, ['45', '42', 'tools']);
    });

    it('runs scripts far larger than one exec argument (1 MiB)', async () => {
      const script = `# ${'x'.repeat(1024 * 1024 - 100)}\necho big`;
      const r = await run(sb, script);
      assert.deepEqual(r.stdout, ['big'], r.stderr.join('\n'));
    });

    it('pip installs into the system Python (no PEP 668 refusal)', async () => {
      const r = await run(
        sb,
        'mkdir -p /tmp/pipdemo && cd /tmp/pipdemo && printf "from setuptools import setup\\nsetup(name=\\"magsdemo\\", version=\\"1.0\\", py_modules=[\\"magsdemo\\"])\\n" > setup.py && echo "X = 42" > magsdemo.py && pip3 install -q --no-index --no-build-isolation . && cd / && python3 -c "import magsdemo; print(magsdemo.X)"',
        { timeoutMs: 60_000 },
      );
      assert.deepEqual(r.stdout, ['42'], r.stderr.join('\n'));
    });

    it('files persist between execs in the same sandbox', async () => {
      await run(sb, 'echo kept > /root/f.txt');
      assert.deepEqual((await run(sb, 'cat /root/f.txt')).stdout, ['kept']);
    });

    it('cancel kills the script and reports cancelled; the sandbox keeps working', async () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      const started = Date.now();
      const r = await run(sb, 'sleep 30; echo never', { signal: ac.signal });
      assert.equal(r.reason, 'cancelled');
      assert.ok(Date.now() - started < 5000);
      assert.deepEqual(r.stdout, []);
      assert.deepEqual((await run(sb, 'echo alive')).stdout, ['alive']);
    });

    it('timeout kills the process group and reports timeout', async () => {
      const started = Date.now();
      const r = await run(sb, 'sleep 30 & sleep 30; echo never', { timeoutMs: 300 });
      assert.equal(r.reason, 'timeout');
      assert.equal(r.message, 'timed out after 0.3 s');
      assert.ok(Date.now() - started < 5000);
      assert.deepEqual((await run(sb, 'pgrep -c sleep || true')).stdout, ['0']);
    });

    it('background processes do not hold the script open', async () => {
      const started = Date.now();
      const r = await run(sb, '(sleep 20 &) ; echo done');
      assert.deepEqual(r.stdout, ['done']);
      assert.ok(Date.now() - started < 3000);
    });

    it('a consumer that stalls loses no output (back-pressure, not truncation)', async () => {
      let lines = 0;
      let last = '';
      const stall = new Int32Array(new SharedArrayBuffer(4));
      const r = await sb.exec({ script: 'seq 1 300000' }, (l) => {
        // Block the event loop (as a slow log store would) while the script finishes.
        if (lines++ === 250_000) Atomics.wait(stall, 0, 0, 400);
        last = l.text;
      });
      assert.equal(r.exitCode, 0);
      assert.equal(lines, 300000);
      assert.equal(last, '300000');
    });

    it('runs several scripts at once in one sandbox', async () => {
      const rs = await Promise.all([1, 2, 3, 4].map((i) => run(sb, `sleep 0.1; echo ${i}`)));
      assert.deepEqual(rs.map((r) => r.stdout[0]), ['1', '2', '3', '4']);
    });

    it('delivers large output completely', async () => {
      const r = await run(sb, 'seq 1 100000');
      assert.equal(r.stdout.length, 100000);
      assert.equal(r.stdout[99999], '100000');
    });

    it('updateLimits changes memory, CPU and pids of a running sandbox', async () => {
      await sb.updateLimits({ memoryMb: 300, vcpus: 0.5, pids: 300 });
      const r = await run(sb, 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max');
      assert.deepEqual(r.stdout, [String(300 * 1024 * 1024), '300']);
    });

    it('the writable layer has the disk size of the spec', async () => {
      const r = await run(sb, "df -B1M --output=size / | tail -1");
      const mb = Number(r.stdout[0]);
      assert.ok(mb > 900 && mb <= 1024, `root size ${mb} MiB`);
    });

    it('apt-get install and npm install reach the package mirrors', { skip: spec.network === false }, async () => {
      const apt = await run(sb, 'apt-get install -y -q jq >/dev/null 2>&1; echo \'{"a":[1,2]}\' | jq -c .a', { timeoutMs: 240_000 });
      assert.deepEqual(apt.stdout, ['[1,2]'], apt.stderr.join('\n'));
      const npm = await run(sb, 'cd /root && mkdir -p app && cd app && npm init -y >/dev/null && npm install --no-audit --no-fund is-number@7 >/dev/null 2>&1; node -e "console.log(require(\'is-number\')(5))"', { timeoutMs: 240_000 });
      assert.deepEqual(npm.stdout, ['true'], npm.stderr.join('\n'));
    });

    it('pause freezes every process; resume and exec thaw it (optional feature)', async (ctx) => {
      if (!sb.pause || !sb.resume) return ctx.skip('the driver cannot pause sandboxes');
      await run(sb, '(while :; do date +%s%N >> /tmp/ticks; sleep 0.02; done) >/dev/null 2>&1 & echo $! > /tmp/ticker');
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      await sb.pause();
      const pauseMs = performance.now() - t0;
      await new Promise((r) => setTimeout(r, 500));
      const t1 = performance.now();
      await sb.resume();
      const resumeMs = performance.now() - t1;
      assert.ok(pauseMs < 200 && resumeMs < 200, `pause ${pauseMs.toFixed(1)} ms, resume ${resumeMs.toFixed(1)} ms`);
      await new Promise((r) => setTimeout(r, 100));
      const r = await run(sb, 'kill $(cat /tmp/ticker); cat /tmp/ticks');
      const ticks = r.stdout.map((l) => Number(BigInt(l) / 1_000_000n));
      const maxGap = Math.max(...ticks.slice(1).map((v, i) => v - ticks[i]!));
      assert.ok(maxGap >= 450, `the ticker kept running while paused (largest gap ${maxGap} ms)`);
      // exec on a paused sandbox resumes it first.
      await sb.pause();
      assert.deepEqual((await run(sb, 'echo thawed')).stdout, ['thawed']);
      // A paused sandbox can be destroyed cleanly.
      const p = await t.driver.create(newSpec());
      await p.pause!();
      await p.destroy();
      assert.deepEqual(await sandboxLeftovers(t.dataDir, t.instance, p.id), []);
    });

    it('destroy leaves nothing behind, is idempotent, and exec afterwards fails cleanly', async () => {
      const s = await t.driver.create(newSpec());
      assert.deepEqual((await run(s, 'echo x')).stdout, ['x']);
      assert.ok(t.driver.list().includes(s));
      await Promise.all([s.destroy(), s.destroy()]);
      await s.destroy();
      assert.ok(!t.driver.list().includes(s));
      assert.deepEqual(await sandboxLeftovers(t.dataDir, t.instance, s.id), []);
      const r = await run(s, 'echo x');
      assert.equal(r.reason, 'sandbox_failed');
    });

    it('a workspace layer directory persists across sandboxes', async () => {
      const layer = join(t.dataDir, 'ws-test', 'layer');
      const a = await t.driver.create({ ...newSpec(), workspaceLayerDir: layer });
      await run(a, 'mkdir -p /root/proj && echo v1 > /root/proj/file');
      await a.destroy();
      assert.equal(await readFile(join(layer, 'root/proj/file'), 'utf8'), 'v1\n');
      const b = await t.driver.create({ ...newSpec(), workspaceLayerDir: layer });
      assert.deepEqual((await run(b, 'cat /root/proj/file')).stdout, ['v1']);
      await b.destroy();
      assert.deepEqual(await readdir(join(t.dataDir, 'ws-test')), ['layer']);
    });
  });
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  runtimeConformance('container (crun)', () => containerTestDriver());
}
