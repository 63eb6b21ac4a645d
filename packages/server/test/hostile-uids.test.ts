/**
 * Per-uid kernel budgets (issue 15 item 1): every sandbox runs in its own host uid range, in a user
 * namespace created by that range's base uid, so one sandbox exhausting inotify instances, POSIX
 * mqueue bytes or pipe buffers leaves another sandbox and host root able to get theirs. With one
 * shared range and namespaces created by host root (the earlier layout) each of these fails.
 * Real crun sandboxes; the host probes run as the test process (root).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Sandbox } from '../src/runtime/driver.js';
import { ID_BASE } from '../src/runtime/image.js';
import { containerTestDriver, run, SMALL, type TestDriver } from './runtime-conformance.test.js';

const isRoot = process.getuid?.() === 0;
const pexec = promisify(execFile);

/** One resource, held until killed (`hold`) or taken once and released (`probe`). */
const SCRIPT = String.raw`
import ctypes, errno, fcntl, os, select, sys, time
libc = ctypes.CDLL(None, use_errno=True)
rt = ctypes.CDLL('librt.so.1', use_errno=True)
class Attr(ctypes.Structure):
    _fields_ = [('flags', ctypes.c_long), ('maxmsg', ctypes.c_long), ('msgsize', ctypes.c_long), ('curmsgs', ctypes.c_long), ('pad', ctypes.c_long * 4)]
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
kind, mode = sys.argv[1], sys.argv[2]
# epoll: watches of 500 pipe ends in as many epoll instances as it takes (each instance adds 500).
targets, polls = [], []
if kind == 'epoll':
    for _ in range(250): targets.extend(os.pipe())
def take(i):
    if kind == 'epoll':
        if i % len(targets) == 0: polls.append(select.epoll())
        polls[-1].register(targets[i % len(targets)], select.EPOLLIN)
        return i
    if kind == 'inotify':
        fd = libc.inotify_init1(0)
        if fd < 0: raise OSError(ctypes.get_errno(), 'inotify_init1')
        return fd
    if kind == 'mqueue':
        name = ('/mags-%d-%d' % (os.getpid(), i)).encode()
        fd = rt.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(Attr(0, 10, 8192, 0)))
        if fd < 0: raise OSError(ctypes.get_errno(), 'mq_open')
        rt.mq_unlink(name)
        return fd
    if kind == 'pipe':
        r, w = os.pipe()
        if mode == 'hold':
            try: fcntl.fcntl(w, F_SETPIPE_SZ, 1 << 20)
            except OSError: pass
            if fcntl.fcntl(w, F_GETPIPE_SZ) < 65536: raise OSError(errno.EPERM, 'over fs.pipe-user-pages-soft')
        return fcntl.fcntl(w, F_GETPIPE_SZ)
if mode == 'probe':
    try:
        v = take(0)
        print('pipe-size', v) if kind == 'pipe' else print('ok')
    except OSError as e:
        print('failed', errno.errorcode.get(e.errno, e.errno))
    sys.exit(0)
n = 0
err = 'none'
for i in range(100000):
    try:
        take(i); n += 1
    except OSError as e:
        err = errno.errorcode.get(e.errno, e.errno); break
with open(sys.argv[3] + '.tmp', 'w') as f: f.write('%d %s\n' % (n, err))
os.rename(sys.argv[3] + '.tmp', sys.argv[3])
time.sleep(120)
`;

describe('per-sandbox host uid ranges keep per-uid kernel budgets apart', { skip: isRoot ? false : 'needs root', timeout: 300_000 }, () => {
  let t: TestDriver;
  const created: Sandbox[] = [];
  const make = async (layers: { workspaceLayerDir?: string; extraLowerDirs?: string[] } = {}) => {
    const sb = await t.driver.create({ limits: { ...SMALL, memoryMb: 512 }, network: false, ...layers });
    created.push(sb);
    await run(sb, `cat > /tmp/res.py <<'EOF'\n${SCRIPT}\nEOF`);
    return sb;
  };
  const hostProbe = async (kind: string) => (await pexec('python3', ['-c', SCRIPT, kind, 'probe'])).stdout.trim();
  /** Starts a holder in the sandbox (detached, so it outlives the exec) and returns what it got. */
  const hold = async (sb: Sandbox, kind: string) => {
    const r = await run(sb, `setsid python3 /tmp/res.py ${kind} hold /tmp/${kind}.done >/tmp/${kind}.log 2>&1 < /dev/null & for i in $(seq 200); do [ -f /tmp/${kind}.done ] && break; sleep 0.05; done; cat /tmp/${kind}.done /tmp/${kind}.log`);
    return r.stdout.join(' ').trim();
  };
  const hostRange = async (sb: Sandbox) => Number((await run(sb, 'cat /proc/self/uid_map')).stdout[0]!.trim().split(/\s+/)[1]);
  const agentPid = async (sb: Sandbox) => Number((await readFile(join(t.dataDir, 'runtime', 'sb', sb.id, 'agent.pid'), 'utf8')).trim());

  before(async () => {
    t = await containerTestDriver({ network: false });
    await t.driver.init();
  });
  after(async () => {
    await Promise.allSettled(created.map((s) => s.destroy()));
    await t?.close();
  });

  it('two sandboxes map root to different host uid ranges, each in a user namespace owned by its base uid', async () => {
    const a = await make();
    const b = await make();
    const maps = await Promise.all([a, b].map(async (sb) => (await run(sb, 'cat /proc/self/uid_map')).stdout[0]!.trim().split(/\s+/).map(Number)));
    const [ma, mb] = maps as [number[], number[]];
    assert.equal(ma[0], 0);
    assert.equal(ma[2], 65536);
    assert.ok(Math.abs(ma[1]! - mb[1]!) >= 65536, `ranges overlap: ${ma[1]} and ${mb[1]}`);
    assert.deepEqual([a.hostIdBase, b.hostIdBase], [ma[1], mb[1]], 'the sandbox tells host code its range');
    // NS_GET_OWNER_UID on each agent's user namespace: the range's base, not host root.
    for (const [sb, m] of [[a, ma], [b, mb]] as const) {
      const pid = await agentPid(sb);
      const owner = await pexec('python3', ['-c', `import os,fcntl,struct; fd=os.open('/proc/${pid}/ns/user',os.O_RDONLY); b=bytearray(4); fcntl.ioctl(fd,0xb704,b); print(struct.unpack('I',b)[0])`]);
      assert.equal(Number(owner.stdout.trim()), m[1], 'the user namespace is owned by the range base uid');
    }
    // Limits of the namespace itself: no nested user namespaces, a bounded inotify budget.
    const lim = await run(a, 'cat /proc/sys/user/max_user_namespaces /proc/sys/user/max_inotify_instances');
    assert.deepEqual(lim.stdout, ['0', '128']);
  });

  it('inotify instances: one sandbox takes all of its own, another sandbox and host root still get theirs', async () => {
    const a = await make();
    const b = await make();
    const got = await hold(a, 'inotify');
    assert.match(got, /^\d+ EMFILE/, `holder: ${got}`);
    assert.equal((await run(b, 'python3 /tmp/res.py inotify probe')).stdout[0], 'ok', 'the other sandbox');
    assert.equal(await hostProbe('inotify'), 'ok', 'host root');
  });

  it('POSIX mqueue bytes: one sandbox takes its RLIMIT_MSGQUEUE, another sandbox and host root still open queues', async () => {
    const a = await make();
    const b = await make();
    const got = await hold(a, 'mqueue');
    assert.match(got, /^\d+ EMFILE/, `holder: ${got}`);
    assert.equal((await run(b, 'python3 /tmp/res.py mqueue probe')).stdout[0], 'ok', 'the other sandbox');
    assert.equal(await hostProbe('mqueue'), 'ok', 'host root');
  });

  it('pipe buffers: one sandbox past fs.pipe-user-pages-soft, another sandbox still gets full-size pipes', async () => {
    const a = await make();
    const b = await make();
    const got = await hold(a, 'pipe');
    assert.match(got, /^\d+ EPERM/, `holder (new pipes shrink once over the per-user soft limit): ${got}`);
    const own = (await run(a, 'python3 /tmp/res.py pipe probe')).stdout[0]!;
    assert.ok(Number(own.split(' ')[1]) < 65536, `the holder's own sandbox is over its budget: ${own}`);
    assert.equal((await run(b, 'python3 /tmp/res.py pipe probe')).stdout[0], 'pipe-size 65536', 'the other sandbox');
  });

  it('epoll watches: one sandbox takes all of fs.epoll.max_user_watches, another sandbox and host root still add theirs', async () => {
    // The limit is per host uid and host-wide; it is lowered for this test (each watch is ~160 bytes
    // of kernel memory: exhausting the default 5.49 M would take ~900 MB) and restored after.
    const sysctl = '/proc/sys/fs/epoll/max_user_watches';
    const saved = (await readFile(sysctl, 'utf8')).trim();
    try {
      await writeFile(sysctl, '60000');
      const a = await make();
      const b = await make();
      const got = await hold(a, 'epoll');
      assert.match(got, /^\d+ ENOSPC/, `holder: ${got}`);
      assert.ok(Number(got.split(' ')[0]) >= 59000, `the holder got the whole budget: ${got}`);
      assert.equal((await run(b, 'python3 /tmp/res.py epoll probe')).stdout[0], 'ok', 'the other sandbox');
      assert.equal(await hostProbe('epoll'), 'ok', 'host root');
    } finally {
      await writeFile(sysctl, saved);
    }
  });

  it('workspace sandboxes (host-directory layers) get ranges of their own; their files keep the image ids on disk', async () => {
    const root = join(t.dataDir, 'ws-uids');
    const base = join(root, 'base');
    try {
      // A base layer (extra lower directory) as the workspace code leaves it: image ids on disk.
      await mkdir(join(base, 'srv'), { recursive: true });
      await writeFile(join(base, 'srv', 'app'), 'from base\n');
      await chown(join(base, 'srv', 'app'), ID_BASE + 1000, ID_BASE + 1000);
      const a = await make({ workspaceLayerDir: join(root, 'a', 'upper'), extraLowerDirs: [base] });
      const b = await make({ workspaceLayerDir: join(root, 'b', 'upper') });
      const plain = await make();
      const ranges = await Promise.all([a, b, plain].map(hostRange));
      assert.equal(new Set(ranges).size, 3, `three sandboxes, three ranges: ${ranges}`);
      for (const r of ranges) assert.notEqual(r, ID_BASE, 'no sandbox runs in the image\'s own range');
      assert.deepEqual([a.hostIdBase, b.hostIdBase], ranges.slice(0, 2));
      // Inside, ids look as they should: the base layer's file belongs to uid 1000, the image's to root.
      assert.deepEqual((await run(a, 'stat -c %u:%g /srv/app /etc/passwd; cat /srv/app')).stdout, ['1000:1000', '0:0', 'from base']);
      // Written through the sandbox's own range, stored with the image's ids (another slot reads them right).
      const w = await run(a, 'echo x > /root/by-root && setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "echo y > /tmp/by-1000" && chown 1000:1000 /srv/app && echo ok');
      assert.deepEqual(w.stdout, ['ok'], w.stderr.join('\n'));
      const owner = async (p: string) => { const st = await stat(join(root, 'a', 'upper', p)); return [st.uid, st.gid]; };
      assert.deepEqual(await owner('root/by-root'), [ID_BASE, ID_BASE]);
      assert.deepEqual(await owner('tmp/by-1000'), [ID_BASE + 1000, ID_BASE + 1000]);
      assert.deepEqual(await owner('srv/app'), [ID_BASE + 1000, ID_BASE + 1000], 'copied up from the base layer with its ids');
      // Per-uid budgets are the workspace sandbox's own: exhausting inotify in one leaves the other its own.
      const got = await hold(a, 'inotify');
      assert.match(got, /^\d+ EMFILE/, `holder: ${got}`);
      assert.equal((await run(b, 'python3 /tmp/res.py inotify probe')).stdout[0], 'ok', 'the other workspace sandbox');
      // The same workspace in another slot afterwards sees its files with the right owners.
      await a.destroy();
      const again = await make({ workspaceLayerDir: join(root, 'a', 'upper'), extraLowerDirs: [base] });
      assert.notEqual(await hostRange(again), ID_BASE);
      assert.deepEqual((await run(again, 'stat -c %u /root/by-root /tmp/by-1000 /srv/app')).stdout, ['0', '1000', '1000']);
    } finally {
      await Promise.allSettled(created.map((s) => s.destroy()));
      await rm(root, { recursive: true, force: true });
    }
  });
});
