/**
 * The runtime driver conformance suite. `runtimeConformance(name, factory, capabilities)` runs the
 * same tests against any RuntimeDriver: the generic part (scripts, output, exit codes, env, cwd,
 * cancel, timeout, destroy) always, the rest by capability flag. Host-resource leak checks are the
 * factory's `leftovers` and `close` hooks, so the suite itself knows nothing of mounts or cgroups.
 * Run from runtime-conformance.test.ts (crun, root) and runtime-conformance-fake.test.ts (no root).
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { OutputLine, RuntimeDriver, Sandbox, SandboxLimits, SandboxSpec } from '../../src/runtime/driver.js';

export const testLog = pino({ level: process.env.MAGS_TEST_LOG ?? 'warn' });
export const SMALL: SandboxLimits = { vcpus: 1, memoryMb: 256, diskGb: 1, pids: 256 };

/** A driver under test with the hooks the suite needs. */
export interface TestDriver {
  driver: RuntimeDriver;
  /** A directory the test may use (workspace layers are created under it). */
  dataDir: string;
  /** Resources of one sandbox that still exist after destroy (empty = destroyed cleanly). */
  leftovers(id: string, sandbox: Sandbox): Promise<string[]>;
  /** Shuts the driver down, checks it left nothing behind, removes the data dir. */
  close(): Promise<void>;
}

export type DriverFactory = () => Promise<TestDriver>;

/** What a driver can do beyond the generic contract; each flag selects tests. */
export interface RuntimeCapabilities {
  /** The guest is the Mags Debian image: root user, /root home, hostname mags-vm, python3/node/git/pip. */
  debianGuest: boolean;
  /** pause() and resume() freeze and thaw every process. */
  pause: boolean;
  /** spawn() runs interactive processes with stdin. */
  spawn: boolean;
  /** spawn() can allocate a pseudo-terminal. */
  pty: boolean;
  /** A spawned process's pause()/resume() hold its output: past a bounded window its writes block. */
  outputFlow: boolean;
  /** Sandboxes with `network: true` reach the package mirrors. */
  internet: boolean;
  /** updateLimits() shows in the guest's cgroup files. */
  cgroupLimits: boolean;
  /** The root filesystem has the disk size of the spec. */
  diskLimit: boolean;
  /** `workspaceLayerDir` keeps the sandbox's /root across sandboxes. */
  workspaceLayer: boolean;
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

/** The conformance suite every runtime driver passes. `spec` adds to every sandbox's spec. */
export function runtimeConformance(name: string, factory: DriverFactory, caps: RuntimeCapabilities, spec: Partial<SandboxSpec> = {}): void {
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
      const r = await run(sb, 'echo "$FOO|$EQ"; echo "$HOME"; pwd; echo "$USER|$PATH"', { env: { FOO: 'bar baz', EQ: 'a=b' } });
      assert.equal(r.stdout[0], 'bar baz|a=b');
      assert.equal(r.stdout[1], r.stdout[2], 'scripts start in HOME');
      assert.match(r.stdout[3]!, /^\w+\|\/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin$/);
      if (caps.debianGuest) assert.deepEqual(r.stdout.slice(1), ['/root', '/root', 'root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    });

    it('runs in HOME by default, or in cwd; a missing cwd fails the script', async () => {
      assert.deepEqual((await run(sb, 'pwd', { cwd: '/tmp' })).stdout, ['/tmp']);
      const missing = await run(sb, 'pwd', { cwd: '/nope' });
      assert.notEqual(missing.exitCode, 0);
      assert.match(missing.stderr.join('\n'), /cannot change directory to \/nope/);
    });

    it('runs scripts far larger than one exec argument (1 MiB)', async () => {
      const script = `# ${'x'.repeat(1024 * 1024 - 100)}\necho big`;
      const r = await run(sb, script);
      assert.deepEqual(r.stdout, ['big'], r.stderr.join('\n'));
    });

    it('files persist between execs in the same sandbox', async () => {
      await run(sb, 'echo kept > "$HOME/f.txt"');
      assert.deepEqual((await run(sb, 'cat "$HOME/f.txt"')).stdout, ['kept']);
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
      const r = await run(sb, 'sleep 30 & echo $! > "$HOME/bg.pid"; sleep 30; echo never', { timeoutMs: 300 });
      assert.equal(r.reason, 'timeout');
      assert.equal(r.message, 'timed out after 0.3 s');
      assert.ok(Date.now() - started < 5000);
      // Gone or a zombie (killed, not yet reaped by whichever init adopted it).
      const bg = await run(sb, 'sleep 0.1; s=$(cut -d" " -f3 "/proc/$(cat "$HOME/bg.pid")/stat" 2>/dev/null); if [ -z "$s" ] || [ "$s" = Z ]; then echo gone; else echo "alive ($s)"; fi');
      assert.deepEqual(bg.stdout, ['gone'], 'the background sleep of the script was killed too');
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

    it('updateLimits changes the limits of a running sandbox', async () => {
      await sb.updateLimits({ memoryMb: 300, vcpus: 0.5, pids: 300 });
      assert.deepEqual(sb.spec.limits, { ...SMALL, memoryMb: 300, vcpus: 0.5, pids: 300 });
      if (!caps.cgroupLimits) return;
      const r = await run(sb, 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max');
      assert.deepEqual(r.stdout, [String(300 * 1024 * 1024), '300']);
    });

    it('spawn runs a process with stdin and reports its exit', { skip: !caps.spawn && 'the driver cannot spawn processes' }, async () => {
      const out: Buffer[] = [];
      const p = sb.spawn!({ argv: ['/bin/sh', '-c', 'read x; echo "got $x"; exit 7'], stdin: true }, (stream, data) => {
        if (stream === 'stdout') out.push(data);
      });
      p.write('hello\n');
      p.closeStdin();
      assert.deepEqual(await p.exited, { code: 7, signal: null });
      assert.equal(Buffer.concat(out).toString(), 'got hello\n');
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const sleeper = sb.spawn!({ argv: ['/bin/sh', '-c', 'echo started; exec sleep 30'] }, () => started());
      await running;
      sleeper.kill(9);
      assert.deepEqual(await sleeper.exited, { code: null, signal: 9 });
    });

    it('spawn with a pty gives the process a terminal', { skip: !caps.pty && 'the driver has no pseudo-terminals' }, async () => {
      const out: Buffer[] = [];
      const p = sb.spawn!({ argv: ['/bin/sh', '-c', 'test -t 0 && test -t 1 && echo is-a-tty'], pty: { cols: 80, rows: 24 } }, (_s, d) => out.push(d));
      assert.equal((await p.exited).code, 0);
      assert.match(Buffer.concat(out).toString(), /is-a-tty/);
    });

    it('a spawned process paused by its consumer blocks once a window of output is out; resumed, all of it arrives', { skip: !caps.outputFlow && 'the driver has no output flow control' }, async () => {
      const total = 16 * 1024 * 1024;
      for (const pty of caps.pty ? [undefined, { cols: 80, rows: 24 }] : [undefined]) {
        let got = 0;
        const p = sb.spawn!({ argv: ['/bin/sh', '-c', `head -c ${total} /dev/zero`], pty }, (_s, d) => (got += d.length));
        p.pause!();
        let exited = false;
        void p.exited.then(() => (exited = true));
        await new Promise((r) => setTimeout(r, 500));
        const held = got;
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(got, held, 'nothing more arrives while paused');
        assert.ok(held < total / 4 && !exited, `the writer is blocked (${held} bytes out, ${pty ? 'pty' : 'pipe'})`);
        p.resume!();
        assert.equal((await p.exited).code, 0);
        assert.equal(got, total);
      }
    });

    it('pause freezes every process; resume and exec thaw it', { skip: !caps.pause && 'the driver cannot pause sandboxes' }, async () => {
      await run(sb, '(while :; do date +%s%N >> "$HOME/ticks"; sleep 0.02; done) >/dev/null 2>&1 & echo $! > "$HOME/ticker"');
      await new Promise((r) => setTimeout(r, 200));
      // How fast pause and resume are is measured in bench/persistent.mjs (thaw), not asserted here.
      await sb.pause!();
      await new Promise((r) => setTimeout(r, 500));
      await sb.resume!();
      await new Promise((r) => setTimeout(r, 100));
      const r = await run(sb, 'kill $(cat "$HOME/ticker"); cat "$HOME/ticks"');
      const ticks = r.stdout.map((l) => Number(BigInt(l) / 1_000_000n));
      const maxGap = Math.max(...ticks.slice(1).map((v, i) => v - ticks[i]!));
      assert.ok(maxGap >= 450, `the ticker kept running while paused (largest gap ${maxGap} ms)`);
      // exec on a paused sandbox resumes it first.
      await sb.pause!();
      assert.deepEqual((await run(sb, 'echo thawed')).stdout, ['thawed']);
      // A paused sandbox can be destroyed cleanly.
      const p = await t.driver.create(newSpec());
      await run(p, 'sleep 30 >/dev/null 2>&1 &');
      await p.pause!();
      await p.destroy();
      assert.deepEqual(await t.leftovers(p.id, p), []);
    });

    it('destroy leaves nothing behind, is idempotent, and exec afterwards fails cleanly', async () => {
      const s = await t.driver.create(newSpec());
      assert.deepEqual((await run(s, 'echo x; sleep 30 >/dev/null 2>&1 &')).stdout, ['x']);
      assert.ok(t.driver.list().includes(s));
      await Promise.all([s.destroy(), s.destroy()]);
      await s.destroy();
      assert.ok(!t.driver.list().includes(s));
      assert.deepEqual(await t.leftovers(s.id, s), []);
      const r = await run(s, 'echo x');
      assert.equal(r.reason, 'sandbox_failed');
    });

    it('a workspace layer directory persists across sandboxes', { skip: !caps.workspaceLayer && 'the driver has no workspace layers' }, async () => {
      const layer = join(t.dataDir, 'ws-test', 'layer');
      const a = await t.driver.create({ ...newSpec(), workspaceLayerDir: layer });
      await run(a, 'mkdir -p "$HOME/proj" && echo v1 > "$HOME/proj/file"');
      await a.destroy();
      assert.equal(await readFile(join(layer, 'root/proj/file'), 'utf8'), 'v1\n');
      const b = await t.driver.create({ ...newSpec(), workspaceLayerDir: layer });
      assert.deepEqual((await run(b, 'cat "$HOME/proj/file"')).stdout, ['v1']);
      await b.destroy();
      assert.deepEqual(await readdir(join(t.dataDir, 'ws-test')), ['layer']);
    });

    describe('the Mags Debian guest', { skip: !caps.debianGuest && 'the driver does not run the Mags image' }, () => {
      it('hostname mags-vm, user root, /root by default', async () => {
        assert.deepEqual((await run(sb, 'hostname; whoami; id -u; pwd')).stdout, ['mags-vm', 'root', '0', '/root']);
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

      it('pip installs into the system Python (no PEP 668 refusal)', async () => {
        const r = await run(
          sb,
          'mkdir -p /tmp/pipdemo && cd /tmp/pipdemo && printf "from setuptools import setup\\nsetup(name=\\"magsdemo\\", version=\\"1.0\\", py_modules=[\\"magsdemo\\"])\\n" > setup.py && echo "X = 42" > magsdemo.py && pip3 install -q --no-index --no-build-isolation . && cd / && python3 -c "import magsdemo; print(magsdemo.X)"',
          { timeoutMs: 60_000 },
        );
        assert.deepEqual(r.stdout, ['42'], r.stderr.join('\n'));
      });
    });

    it('the writable layer has the disk size of the spec', { skip: !caps.diskLimit && 'the driver does not limit disk size' }, async () => {
      const r = await run(sb, 'df -B1M --output=size / | tail -1');
      const mb = Number(r.stdout[0]);
      assert.ok(mb > 900 && mb <= 1024, `root size ${mb} MiB`);
    });

    it('apt-get install and npm install reach the package mirrors', { skip: (!caps.internet || spec.network === false) && 'the sandboxes have no internet' }, async () => {
      const apt = await run(sb, 'apt-get install -y -q jq >/dev/null 2>&1; echo \'{"a":[1,2]}\' | jq -c .a', { timeoutMs: 240_000 });
      assert.deepEqual(apt.stdout, ['[1,2]'], apt.stderr.join('\n'));
      const npm = await run(sb, 'cd /root && mkdir -p app && cd app && npm init -y >/dev/null && npm install --no-audit --no-fund is-number@7 >/dev/null 2>&1; node -e "console.log(require(\'is-number\')(5))"', { timeoutMs: 240_000 });
      assert.deepEqual(npm.stdout, ['true'], npm.stderr.join('\n'));
    });
  });
}
