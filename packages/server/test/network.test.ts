// The sandbox network on the real host (root): bridges, netns, veths, nftables. Traffic in these tests
// goes only to loopback, the bridge address, the host's own address and sandbox addresses.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { instancePrefix } from '../src/host/instance.js';
import { chooseSubnet, formatCidr, intToIp, overlaps, parseCidr } from '../src/network/ipv4.js';
import { createNetworkManager, type NetworkManager, NETNS_DIR } from '../src/network/manager.js';

const exec = promisify(execFile);
const log = pino({ level: process.env.MAGS_TEST_LOG ?? 'warn' });
const isRoot = process.getuid?.() === 0;
/** Port the test listeners inside sandboxes use (each sandbox has its own netns, so no clash). */
const SANDBOX_PORT = 8080;
/** How long a blocked connection attempt is given before it counts as dropped. */
const PROBE_TIMEOUT_MS = 1200;

interface Env {
  dataDir: string;
  instance: string;
  nm: NetworkManager;
}

const envs: Env[] = [];
const children: ChildProcess[] = [];
const servers: Server[] = [];

async function newEnv(): Promise<Env> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mags-net-test-'));
  const instance = instancePrefix(dataDir);
  const env = { dataDir, instance, nm: createNetworkManager({ instance, dataDir, log }) };
  envs.push(env);
  return env;
}

/** Everything on the host that carries the instance prefix. */
async function leftovers(instance: string): Promise<{ netns: string[]; links: string[]; tables: string[] }> {
  const netns = (await readdir(NETNS_DIR).catch(() => [] as string[])).filter((n) => n.startsWith(`${instance}-`));
  const links = (JSON.parse((await exec('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith(instance));
  const tables = (await exec('nft', ['list', 'tables'])).stdout
    .split('\n')
    .filter((l) => l.trim().endsWith(` ${instance}`));
  return { netns, links, tables };
}

function nsName(instance: string, id: string): string {
  return `${instance}-${id}`;
}

/** Runs a node snippet inside a netns (tests only; the product execs through the guest agent). */
async function inNs(ns: string, code: string): Promise<string> {
  const { stdout } = await exec('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { timeout: 10_000 });
  return stdout.trim();
}

/** Connects from inside `ns`: "open", "timeout" (dropped) or the socket error code. */
function probe(ns: string, host: string, port: number): Promise<string> {
  return inNs(
    ns,
    `const s = require('net').connect({ host: ${JSON.stringify(host)}, port: ${port} });
     const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, ${PROBE_TIMEOUT_MS});
     s.on('connect', () => { console.log('open'); process.exit(0); });
     s.on('error', (e) => { console.log(e.code); process.exit(0); });`,
  );
}

/** Starts a TCP server inside `ns` that answers `tag` and resolves once it listens. */
async function listenInNs(ns: string, tag: string, host = '0.0.0.0'): Promise<void> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `require('net').createServer((s) => s.end(${JSON.stringify(tag)}))
         .listen(${SANDBOX_PORT}, ${JSON.stringify(host)}, () => console.log('ready'));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`listener in ${ns} exited with ${code}`)));
  });
}

/** Reads what a TCP server at host:port answers, from the host itself. */
function readFrom(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    import('node:net').then(({ connect }) => {
      const s = connect({ host, port });
      let data = '';
      s.setTimeout(3000, () => {
        s.destroy();
        reject(new Error(`timeout reading ${host}:${port}`));
      });
      s.on('data', (b) => (data += b.toString()));
      s.on('end', () => resolve(data));
      s.on('error', reject);
    }, reject);
  });
}

async function hostListener(host: string): Promise<number> {
  const srv = createServer((s) => s.end('host'));
  servers.push(srv);
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, resolve);
  });
  return (srv.address() as { port: number }).port;
}

/** The host's address on the interface of its default route, if it has one. */
async function mainAddress(): Promise<string | undefined> {
  const routes = JSON.parse((await exec('ip', ['-j', '-4', 'route', 'show', 'default'])).stdout) as { dev?: string }[];
  const dev = routes[0]?.dev;
  if (!dev) return undefined;
  const addrs = JSON.parse((await exec('ip', ['-j', '-4', 'addr', 'show', 'dev', dev])).stdout) as {
    addr_info: { local: string }[];
  }[];
  return addrs[0]?.addr_info[0]?.local;
}

describe('sandbox network (root)', { skip: isRoot ? false : 'needs root' }, () => {
  let a: Env;

  before(async () => {
    a = await newEnv();
    await a.nm.init();
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const s of servers) s.close();
    for (const e of envs) {
      await e.nm.shutdown().catch((err: unknown) => log.error({ err }, 'shutdown failed'));
      await rm(e.dataDir, { recursive: true, force: true });
    }
    for (const e of envs) {
      const left = await leftovers(e.instance);
      assert.deepEqual(left, { netns: [], links: [], tables: [] }, `leftovers of ${e.instance}`);
    }
  });

  it('init is idempotent and installs this instance tables with masquerade', async () => {
    await a.nm.init();
    const { bridge, subnet } = a.nm.info();
    assert.ok(bridge.startsWith(a.instance) && bridge.length <= 15);
    const inet = (await exec('nft', ['list', 'table', 'inet', a.instance])).stdout;
    assert.ok(inet.includes(`ip saddr ${subnet} oifname != "${bridge}" masquerade`), inet);
    assert.match(inet, /sandbox -> host/);
    assert.match(inet, /sandbox -> private\/LAN/);
    // DNS goes to the host's real resolvers (checked by rule, not by traffic: tests send none outside).
    for (const r of a.nm.info().resolvers) assert.ok(inet.includes(r), `resolver ${r} allowed:\n${inet}`);
    assert.match(inet, /ip daddr @resolvers4 meta l4proto \{ tcp, udp \} th dport 53 accept/);
    const br = (await exec('nft', ['list', 'table', 'bridge', a.instance])).stdout;
    assert.match(br, /sandbox -> sandbox/);
    assert.equal((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), '1');
    assert.equal((await leftovers(a.instance)).tables.length, 2);
  });

  it('gives two sandboxes distinct addresses, a netns, isolated veths and a sane resolv.conf', async () => {
    const [s1, s2] = await Promise.all([a.nm.create('addr1'), a.nm.create('addr2')]);
    try {
      assert.notEqual(s1.ipAddress, s2.ipAddress);
      assert.equal(s1.netnsPath, join(NETNS_DIR, nsName(a.instance, 'addr1')));
      assert.ok(existsSync(s1.netnsPath));
      const route = await exec('ip', ['-n', nsName(a.instance, 'addr1'), 'route', 'show', 'default']);
      assert.match(route.stdout, new RegExp(`default via ${a.nm.info().gateway.replace(/\./g, '\\.')} dev eth0`));
      const ports = JSON.parse((await exec('ip', ['-d', '-j', 'link', 'show', 'master', a.nm.info().bridge])).stdout) as {
        linkinfo: { info_slave_data: { isolated: boolean } };
      }[];
      assert.equal(ports.length, 2);
      assert.ok(ports.every((p) => p.linkinfo.info_slave_data.isolated));
      const resolv = await readFile(s1.resolvConfPath, 'utf8');
      const servers = [...resolv.matchAll(/^nameserver (\S+)$/gm)].map((m) => m[1]);
      assert.deepEqual(servers, a.nm.info().resolvers.slice(0, 3));
      assert.ok(servers.length > 0 && servers.every((s) => !s!.startsWith('127.')), resolv);
    } finally {
      await a.nm.destroy('addr1');
      await a.nm.destroy('addr2');
    }
  });

  it('never hands out one address twice under concurrency', async () => {
    const ids = Array.from({ length: 16 }, (_, i) => `conc${i}`);
    try {
      const nets = await Promise.all(ids.map((id) => a.nm.create(id)));
      assert.equal(new Set(nets.map((n) => n.ipAddress)).size, ids.length);
      assert.equal((await readdir(join(a.dataDir, 'net', 'leases'))).length, ids.length);
      // Removing some ports must not drop the host's pinned entries of the others.
      await Promise.all(ids.slice(0, 8).map((id) => a.nm.destroy(id)));
      const neigh = (await exec('ip', ['neigh', 'show', 'dev', a.nm.info().bridge, 'nud', 'permanent'])).stdout;
      for (const n of nets.slice(8)) assert.ok(neigh.includes(`${n.ipAddress} lladdr`), `${n.ipAddress} pinned:\n${neigh}`);
    } finally {
      await Promise.all(ids.map((id) => a.nm.destroy(id)));
    }
    assert.deepEqual(await readdir(join(a.dataDir, 'net', 'leases')), []);
    assert.deepEqual((await leftovers(a.instance)).netns, []);
  });

  it('isolates sandboxes from each other and from the host, but lets the host reach them', async () => {
    const nsA = nsName(a.instance, 'iso-a');
    const nsB = nsName(a.instance, 'iso-b');
    const [, netB] = await Promise.all([a.nm.create('iso-a'), a.nm.create('iso-b')]);
    try {
      const { gateway } = a.nm.info();
      await listenInNs(nsB, 'hello-from-b');
      // The host (the proxy) reaches a sandbox port by its bridge address.
      assert.equal(await readFrom(netB.ipAddress, SANDBOX_PORT), 'hello-from-b');
      // Host listeners on every address, on the bridge address only, and on the main address.
      const anyPort = await hostListener('0.0.0.0');
      const bridgePort = await hostListener(gateway);
      const main = await mainAddress();
      const mainPort = main ? await hostListener(main) : undefined;
      assert.equal(await readFrom(gateway, anyPort), 'host', 'the host itself reaches its listener');

      const probes: [string, Promise<string>][] = [
        ['A -> B on the bridge', probe(nsA, netB.ipAddress, SANDBOX_PORT)],
        ['A -> host 0.0.0.0 listener via bridge address', probe(nsA, gateway, anyPort)],
        ['A -> host bridge-bound listener', probe(nsA, gateway, bridgePort)],
      ];
      if (main && mainPort) {
        probes.push(['A -> host 0.0.0.0 listener via main address', probe(nsA, main, anyPort)]);
        probes.push(['A -> host main-address listener', probe(nsA, main, mainPort)]);
      }
      for (const [what, p] of probes) assert.equal(await p, 'timeout', what);

      // Routing to B through the host instead of over the bridge does not help either.
      await exec('ip', ['-n', nsA, 'route', 'add', `${netB.ipAddress}/32`, 'via', gateway]);
      assert.equal(await probe(nsA, netB.ipAddress, SANDBOX_PORT), 'timeout', 'A -> B via the host');
      // B still serves the host.
      assert.equal(await readFrom(netB.ipAddress, SANDBOX_PORT), 'hello-from-b');
    } finally {
      await a.nm.destroy('iso-a');
      await a.nm.destroy('iso-b');
    }
  });

  it("stops a sandbox that takes another's MAC and address from stealing its traffic", async () => {
    const nsA = nsName(a.instance, 'spoof-a');
    const nsB = nsName(a.instance, 'spoof-b');
    const [, netB] = await Promise.all([a.nm.create('spoof-a'), a.nm.create('spoof-b')]);
    try {
      await listenInNs(nsB, 'real-b');
      assert.equal(await readFrom(netB.ipAddress, SANDBOX_PORT), 'real-b');
      const macB = (JSON.parse((await exec('ip', ['-n', nsB, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[])[0]!
        .address;
      // A (root with CAP_NET_ADMIN here; NET_RAW alone allows the same frames) impersonates B and talks.
      await exec('ip', ['-n', nsA, 'link', 'set', 'dev', 'eth0', 'address', macB]);
      await exec('ip', ['-n', nsA, 'addr', 'flush', 'dev', 'eth0']);
      await exec('ip', ['-n', nsA, 'addr', 'add', `${netB.ipAddress}/20`, 'dev', 'eth0']);
      await exec('ip', ['-n', nsA, 'route', 'replace', 'default', 'via', a.nm.info().gateway]);
      await listenInNs(nsA, 'impostor');
      assert.equal(await probe(nsA, a.nm.info().gateway, 22), 'timeout');
      // The host still reaches the real B (its bridge entry and the host's neighbour entry hold).
      for (let i = 0; i < 3; i++) assert.equal(await readFrom(netB.ipAddress, SANDBOX_PORT), 'real-b');
      const br = (await exec('nft', ['list', 'chain', 'bridge', a.instance, 'prerouting'])).stdout;
      const dropped = /iifname \. ether saddr != @port_mac counter packets (\d+)/.exec(br);
      assert.ok(dropped && Number(dropped[1]) > 0, br);
    } finally {
      await a.nm.destroy('spoof-a');
      await a.nm.destroy('spoof-b');
    }
  });

  it("gives each sandbox its own loopback: 127.0.0.1 is not the host's", async () => {
    const ns = nsName(a.instance, 'loop');
    await a.nm.create('loop');
    try {
      const hostLoopPort = await hostListener('127.0.0.1');
      assert.equal(await probe(ns, '127.0.0.1', hostLoopPort), 'ECONNREFUSED');
      await listenInNs(ns, 'own-loopback', '127.0.0.1');
      const own = await inNs(
        ns,
        `require('net').connect(${SANDBOX_PORT}, '127.0.0.1').on('data', (b) => console.log(b.toString()));`,
      );
      assert.equal(own, 'own-loopback');
    } finally {
      await a.nm.destroy('loop');
    }
  });

  it('destroy removes netns, veth, neighbour entry and files, and is idempotent', async () => {
    const net = await a.nm.create('gone');
    await a.nm.destroy('gone');
    await a.nm.destroy('gone');
    await a.nm.destroy('never-existed');
    assert.ok(!existsSync(net.netnsPath));
    assert.ok(!existsSync(net.resolvConfPath));
    const left = await leftovers(a.instance);
    assert.deepEqual(left.netns, []);
    assert.deepEqual(left.links, [a.nm.info().bridge]);
    assert.deepEqual(await readdir(join(a.dataDir, 'net', 'leases')), []);
    const neigh = (await exec('ip', ['neigh', 'show', 'dev', a.nm.info().bridge, 'nud', 'permanent'])).stdout;
    assert.ok(!neigh.includes(`${net.ipAddress} `), neigh);
  });

  it('sweeps what a crashed daemon of the same instance left', async () => {
    const crashed = await newEnv();
    await crashed.nm.init();
    await crashed.nm.create('left1');
    await crashed.nm.create('left2');
    assert.equal((await leftovers(crashed.instance)).netns.length, 2);
    // A new daemon on the same data dir (same instance) cleans up at init.
    const restarted = createNetworkManager({ instance: crashed.instance, dataDir: crashed.dataDir, log });
    crashed.nm = restarted;
    await restarted.init();
    const left = await leftovers(crashed.instance);
    assert.deepEqual(left.netns, []);
    assert.deepEqual(left.links, [restarted.info().bridge]);
    assert.deepEqual(await readdir(join(crashed.dataDir, 'net', 'leases')), []);
    const again = await restarted.create('left1');
    assert.ok(existsSync(again.netnsPath));
    await restarted.shutdown();
    assert.deepEqual(await leftovers(crashed.instance), { netns: [], links: [], tables: [] });
  });

  it('skips a subnet that overlaps an address already on the host', async () => {
    const env = await newEnv();
    const wanted = chooseSubnet(env.instance, [], []);
    // Something else on the host already uses a /24 inside the subnet this instance would pick.
    const dummy = `${env.instance}-dm`;
    await exec('ip', ['link', 'add', dummy, 'type', 'bridge']);
    try {
      await exec('ip', ['addr', 'add', `${intToIp(wanted.base + 256 + 5)}/24`, 'dev', dummy]);
      await env.nm.init();
      const got = parseCidr(env.nm.info().subnet);
      assert.ok(!overlaps(got, wanted), `${formatCidr(got)} overlaps ${formatCidr(wanted)}`);
      assert.equal(await readFile(join(env.dataDir, 'net', 'subnet'), 'utf8'), `${formatCidr(got)}\n`);
    } finally {
      await exec('ip', ['link', 'del', dummy]);
      await env.nm.shutdown();
    }
  });

  it('coexists with another instance; sweeping and shutting one down leaves the other intact', async () => {
    const b = await newEnv();
    await b.nm.init();
    assert.notEqual(b.nm.info().subnet, a.nm.info().subnet);
    assert.notEqual(b.nm.info().bridge, a.nm.info().bridge);
    const nsA = nsName(a.instance, 'co-a');
    const netA = await a.nm.create('co-a');
    try {
      await b.nm.create('co-b');
      await listenInNs(nsA, 'hello-from-a');
      // A sandbox of another instance cannot reach it either.
      assert.equal(await probe(nsName(b.instance, 'co-b'), netA.ipAddress, SANDBOX_PORT), 'timeout');
      await b.nm.sweep();
      await b.nm.shutdown();
      assert.deepEqual(await leftovers(b.instance), { netns: [], links: [], tables: [] });
      const left = await leftovers(a.instance);
      assert.deepEqual(left.netns, [nsA]);
      assert.equal(left.tables.length, 2);
      assert.equal(await readFrom(netA.ipAddress, SANDBOX_PORT), 'hello-from-a');
    } finally {
      await a.nm.destroy('co-a');
    }
  });

  it('creates and destroys quickly', async (t) => {
    const n = 20;
    const createMs: number[] = [];
    const destroyMs: number[] = [];
    for (let i = 0; i < n; i++) {
      let t0 = performance.now();
      await a.nm.create(`speed${i}`);
      createMs.push(performance.now() - t0);
      t0 = performance.now();
      await a.nm.destroy(`speed${i}`);
      destroyMs.push(performance.now() - t0);
    }
    const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    t.diagnostic(`create median ${median(createMs).toFixed(1)} ms, destroy median ${median(destroyMs).toFixed(1)} ms`);
    assert.ok(median(createMs) < 200, `create too slow: ${median(createMs)} ms`);
  });
});
