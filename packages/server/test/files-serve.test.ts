/**
 * The files API's serve process (`mags-guest fs serve`, one per sandbox) on real sandboxes: many
 * concurrent small operations on one sandbox, the process killed from inside and started again,
 * a request on a frozen sandbox and one while the sandbox is being put to sleep, and hostile paths
 * answered as the one-shot operations answer them, without ending the serve process.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createLivePlane, type LivePlane } from './helpers/live-fixture.js';

describe('files API serve process (real sandboxes)', { timeout: 300_000 }, () => {
  let lp: LivePlane;
  let awake: string;

  before(async () => {
    lp = await createLivePlane({ freezeAfterSeconds: 0.5, sleepAfterSeconds: 2.5 });
    awake = await lp.persistent('serve-awake', { no_sleep: true });
  });
  after(async () => {
    await lp?.close();
  });

  const auth = () => ({ authorization: `Bearer ${lp.adminToken}` });
  const url = (job: string, path: string, op = '') => `${lp.url}/api/v1/mags-jobs/${job}/files${op}?path=${encodeURIComponent(path)}`;
  const put = (job: string, path: string, body: Uint8Array | string) => fetch(url(job, path), { method: 'PUT', headers: auth(), body });
  const get = async (job: string, path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(url(job, path), { headers: { ...auth(), ...headers } });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  };
  const exec = async (job: string, command: string) => {
    const r = await lp.call('POST', `/api/v1/mags-jobs/${job}/exec`, { command, timeout_seconds: 60 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { exit_code: number; output: string };
  };
  /** PIDs of the serve processes in the job's sandbox. */
  const servePids = async (job: string) => (await exec(job, "pgrep -f '^mags-guest fs serve' || true")).output.split('\n').filter(Boolean);

  it('answers 100 parallel writes, then 100 parallel reads, all intact, from one serve process', async () => {
    // Sizes around the inline limit (256 KiB): the large ones stream through one-shot processes.
    const files = Array.from({ length: 100 }, (_, i) => ({ path: `/root/par/f${i}.bin`, data: randomBytes(i % 25 === 0 ? 300 * 1024 + i : 1 + ((i * 797) % 4096)) }));
    const written = await Promise.all(files.map(async (f) => {
      const res = await put(awake, f.path, f.data);
      return { status: res.status, body: (await res.json()) as { size: number; path: string } };
    }));
    for (const [i, w] of written.entries()) {
      assert.equal(w.status, 200, JSON.stringify(w.body));
      assert.deepEqual([w.body.path, w.body.size], [files[i]!.path, files[i]!.data.length]);
    }
    const read = await Promise.all(files.map((f) => get(awake, f.path)));
    for (const [i, r] of read.entries()) {
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(files[i]!.data), `${files[i]!.path} differs`);
    }
    // Listings, stats by Range, and mixed reads and writes of one file at once.
    const mixed = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      if (i % 2) return (await put(awake, '/root/par/same.txt', `v${i}`)).status;
      const l = await fetch(url(awake, '/root/par', '/list'), { headers: auth() });
      return ((await l.json()) as { entries: unknown[] }).entries.length >= 100 ? l.status : -1;
    }));
    assert.deepEqual(new Set(mixed), new Set([200]));
    assert.match((await get(awake, '/root/par/same.txt')).body.toString(), /^v\d+$/);
    assert.equal((await exec(awake, 'ls -a /root/par | grep -c mags- || true')).output.trim(), '0', 'no temporary file left');
    assert.equal((await servePids(awake)).length, 1);
  });

  it('answers small requests while a long one (removing a large tree) still runs', async () => {
    await exec(awake, 'mkdir -p /root/tree && cd /root/tree && seq 1 40000 | xargs touch && echo small > /root/small.txt');
    // Its listing (over 1 MiB of entries) is too large for the serve process: a process of its own lists it.
    const listed = (await (await fetch(url(awake, '/root/tree', '/list'), { headers: auth() })).json()) as { entries: unknown[]; truncated: boolean };
    assert.deepEqual([listed.entries.length, listed.truncated], [40000, false]);
    const order: string[] = [];
    const removal = fetch(`${url(awake, '/root/tree')}&recursive=1`, { method: 'DELETE', headers: auth() }).then(async (r) => {
      order.push('rm');
      return r.status;
    });
    await new Promise((r) => setTimeout(r, 20));
    const small = await get(awake, '/root/small.txt');
    order.push('get');
    assert.deepEqual([small.status, small.body.toString()], [200, 'small\n']);
    assert.equal(await removal, 200);
    assert.deepEqual(order, ['get', 'rm'], 'the read was answered while the removal ran');
    assert.equal((await get(awake, '/root/tree/1')).status, 404);
  });

  it('starts the serve process again after it was killed inside the sandbox', async () => {
    assert.equal((await put(awake, '/root/k.txt', 'before')).status, 200);
    const [first] = await servePids(awake);
    assert.ok(first);
    // As root inside the sandbox, with the command a user would type.
    await exec(awake, "pkill -f 'mags-guest fs'");
    assert.deepEqual(await servePids(awake), []);
    const r = await get(awake, '/root/k.txt');
    assert.deepEqual([r.status, r.body.toString()], [200, 'before']);
    assert.equal((await put(awake, '/root/k.txt', 'after')).status, 200);
    const again = await servePids(awake);
    assert.equal(again.length, 1);
    assert.notEqual(again[0], first);
    // Killed while reads and writes are in flight: they are sent again to a new process and all succeed.
    const data = randomBytes(2000);
    assert.equal((await put(awake, '/root/k.bin', data)).status, 200);
    const [reads, writes] = await Promise.all([
      Promise.all(Array.from({ length: 30 }, () => get(awake, '/root/k.bin'))),
      Promise.all(Array.from({ length: 10 }, async (_, i) => (await put(awake, `/root/kw/${i}.txt`, `w${i}`)).status)),
      exec(awake, "pkill -f 'mags-guest fs'"),
    ]);
    for (const g of reads) assert.ok(g.status === 200 && g.body.equals(data), `read after a kill: ${g.status} ${g.body.toString().slice(0, 200)}`);
    assert.deepEqual(writes, Array(10).fill(200));
    for (let i = 0; i < 10; i++) assert.equal((await get(awake, `/root/kw/${i}.txt`)).body.toString(), `w${i}`);
    assert.equal((await exec(awake, 'ls -a /root/kw | grep -c mags- || true')).output.trim(), '0', 'no temporary file left');
    assert.equal((await get(awake, '/root/k.bin')).body.equals(data), true);
  });

  it('answers hostile paths as before, without ending the serve process', async () => {
    assert.equal((await put(awake, '/root/h.txt', 'x')).status, 200);
    const [pid] = await servePids(awake);
    await exec(awake, 'echo inside > /etc/serve-marker && ln -sfn /proc/1/root/etc /root/esc && mkfifo /root/pipe && truncate -s 10G /root/sparse && printf XYZ | dd of=/root/sparse bs=1 seek=5000000000 conv=notrunc 2>/dev/null');
    try {
      assert.equal((await get(awake, '../../../../etc/serve-marker')).body.toString(), 'inside\n');
      assert.equal((await get(awake, '/root/esc/serve-marker')).status, 403);
      assert.equal((await put(awake, '/root/esc/new-file', 'x')).status, 403);
      // Listing it shows the link itself (its target cannot be followed), as the one-shot listing does.
      const listed = (await (await fetch(url(awake, '/root/esc', '/list'), { headers: auth() })).json()) as { entries: Array<{ type: string; target?: string }> };
      assert.deepEqual(listed.entries.map((e) => [e.type, e.target]), [['symlink', '/proc/1/root/etc']]);
      const t0 = Date.now();
      const fifo = await fetch(url(awake, '/root/pipe'), { headers: auth() });
      assert.equal(fifo.status, 409);
      assert.equal(((await fifo.json()) as { code: string }).code, 'NOT_A_REGULAR_FILE');
      assert.equal((await put(awake, '/root/pipe', 'x')).status, 409);
      assert.ok(Date.now() - t0 < 5000);
      const whole = await fetch(url(awake, '/root/sparse'), { headers: auth() });
      assert.equal(whole.status, 413);
      await whole.arrayBuffer();
      const part = await get(awake, '/root/sparse', { range: 'bytes=4999999999-5000000003' });
      assert.equal(part.status, 206);
      assert.deepEqual([...part.body], [0, 0x58, 0x59, 0x5a, 0]);
      assert.equal((await get(awake, '/root/nope/x')).status, 404);
      assert.deepEqual(await servePids(awake), [pid]);
    } finally {
      await exec(awake, 'rm -f /root/esc /root/pipe /root/sparse /etc/serve-marker');
    }
  });

  it('thaws a frozen sandbox for a request; the idle serve process lets it freeze and sleep', async () => {
    const job = await lp.persistent('serve-sleepy', { workspace_id: 'serve-sleepy-ws' });
    assert.equal((await put(job, '/root/s.txt', 'one')).status, 200);
    // The serve process now runs in the sandbox; idle, it does not keep the sandbox awake.
    await lp.waitState(job, 'frozen');
    const r = await get(job, '/root/s.txt');
    assert.deepEqual([r.status, r.body.toString()], [200, 'one']);
    // A request while the sandbox is being put to sleep: the first PUT after the state turned
    // `sleeping` (workspace syncing, sandbox being destroyed) waits for the sleep, then wakes it.
    await lp.waitState(job, 'frozen');
    for (let i = 0; i < 2000 && lp.plane.live.state(job) !== 'sleeping'; i++) await new Promise((res) => setTimeout(res, 2));
    assert.equal(lp.plane.live.state(job), 'sleeping');
    const [w1, w2] = await Promise.all([put(job, '/root/s.txt', 'two'), put(job, '/root/t.txt', 'three')]);
    assert.deepEqual([w1.status, w2.status], [200, 200], await w1.text());
    assert.equal((await get(job, '/root/s.txt')).body.toString(), 'two');
    assert.equal((await get(job, '/root/t.txt')).body.toString(), 'three');
    assert.equal((await servePids(job)).length, 1);
    await lp.call('POST', `/api/v1/mags-jobs/${job}/stop`);
  });
});
