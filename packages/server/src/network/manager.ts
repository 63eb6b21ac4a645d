/**
 * Sandbox networking: one bridge, one subnet and one pair of nftables tables per daemon instance,
 * and a named netns + veth pair per sandbox. Layout, rules and debugging: docs/networking.md.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type Runner, ipBatch, ipBatchOk, parseJson, run, runOk } from './exec.js';
import { type Cidr, chooseSubnet, cidrSize, formatCidr, intToIp, ipToInt, overlaps, parseCidr } from './ipv4.js';
import { type ResolvConf, hostResolvers, renderResolvConf } from './resolv.js';
import { deleteTablesScript, rulesScript, slotNames } from './rules.js';

export interface NetworkManagerOptions {
  /** Instance prefix (`instancePrefix(dataDir)`); every bridge, veth, netns and table name starts with it. */
  instance: string;
  /** The daemon's data dir; leases and resolv.conf files live under `<dataDir>/net`. */
  dataDir: string;
  log: Logger;
  /** Force the sandbox subnet (CIDR, /16../24); default: a /20 inside 10.200.0.0/13 derived from the instance. */
  subnet?: string;
  /**
   * Runs the per-sandbox `ip -batch` commands (create and destroy); default: a child of this Node
   * process. The container driver passes its host spawner: forking the large daemon three times per
   * sandbox cost more CPU than the `ip` commands themselves.
   */
  runner?: Runner;
}

/** What the container driver needs to put a sandbox on the network. */
export interface SandboxNetwork {
  /** Path of the named network namespace (`/var/run/netns/<instance>-<id>`), for the OCI config. */
  netnsPath: string;
  /** The sandbox's address on the bridge (no prefix length); the proxy connects to it. */
  ipAddress: string;
  /** A resolv.conf with the host's upstream resolvers, to bind-mount at /etc/resolv.conf. */
  resolvConfPath: string;
}

export interface NetworkManager {
  /** Checks the host, creates the bridge and nftables tables, sweeps leftovers. Idempotent. */
  init(): Promise<void>;
  /** Creates the sandbox's netns, veth pair, address, routes and resolv.conf. */
  create(sandboxId: string): Promise<SandboxNetwork>;
  /** Removes the sandbox's veth, netns, files and address lease. Idempotent. */
  destroy(sandboxId: string): Promise<void>;
  /** Removes every netns, veth and lease of this instance (what a crashed daemon left). */
  sweep(): Promise<void>;
  /** Destroys all sandbox networks of this instance, its bridge and its nftables tables. */
  shutdown(): Promise<void>;
  /**
   * Bytes through the sandbox's veth so far, seen from the sandbox: `egress` it sent, `ingress` it
   * received (zeros when it has no network here). Reads the host side's counters: a sandbox cannot
   * reset them.
   */
  counters(sandboxId: string): { egressBytes: number; ingressBytes: number };
  /** The bridge name, subnet (CIDR) and gateway address, known after `init`. */
  info(): { bridge: string; subnet: string; gateway: string; resolvers: string[] };
}

/** Where `ip netns add` puts the namespace handles. */
export const NETNS_DIR = '/var/run/netns';

/** Instance names go into interface names (15 chars max), so they stay short and dash-free. */
const INSTANCE_RE = /^[a-z][a-z0-9]{0,9}$/;
const SANDBOX_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

interface Held {
  id: string;
  slot: number;
  ns: string;
  veth: string;
  ip: string;
  mac: string;
  resolvConfPath: string;
}

interface State {
  subnet: Cidr;
  gateway: string;
  firstSlot: number;
  lastSlot: number;
  resolv: ResolvConf;
  mtu: number;
}

interface IpRoute {
  dst: string;
  dev?: string;
}
interface IpAddr {
  ifname: string;
  flags: string[];
  mtu: number;
  addr_info: { family: string; local: string; prefixlen: number; scope: string }[];
}
interface IpLink {
  ifname: string;
  mtu: number;
}

/** Messages of `ip -force -batch` that only mean "already gone". */
const GONE =
  /Cannot find device|No such file or directory|No such process|does not exist|Cannot remove namespace|Dump was interrupted/;

/**
 * What the host lacks for sandbox networking, in words a person can act on (empty = fine).
 * Runtime drivers report these from `health()`.
 */
export async function checkNetworkHost(): Promise<string[]> {
  const problems: string[] = [];
  for (const [cmd, arg] of [
    ['ip', '-V'],
    ['nft', '-v'],
  ] as const) {
    try {
      await runOk(cmd, [arg]);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (process.getuid?.() !== 0) problems.push('sandbox networking needs root (netns, veth, nftables)');
  return problems;
}

/** Creates the network manager of one daemon instance. */
export function createNetworkManager(opts: NetworkManagerOptions): NetworkManager {
  const { instance, dataDir } = opts;
  if (!INSTANCE_RE.test(instance)) {
    throw new Error(`network instance "${instance}" must be 1-10 lowercase letters/digits starting with a letter`);
  }
  const log = opts.log.child(opts.log.bindings().component ? { instance } : { component: 'network', instance });
  const bridge = `${instance}-br`;
  const vethPrefix = `${instance}-v`;
  const netDir = join(dataDir, 'net');
  const leasesDir = join(netDir, 'leases');
  const resolvDir = join(netDir, 'resolv');
  const subnetFile = join(netDir, 'subnet');
  const runner = opts.runner;

  let state: State | undefined;
  let initializing: Promise<void> | undefined;
  const held = new Map<string, Held>();
  const slotsInUse = new Set<number>();
  let cursor = 0;
  const locks = new Map<string, Promise<unknown>>();

  /** Runs operations on one sandbox id one after another. */
  function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    locks.set(key, tail);
    void tail.then(() => {
      if (locks.get(key) === tail) locks.delete(key);
    });
    return next;
  }

  const nsName = (id: string): string => `${instance}-${id}`;
  const resolvPath = (id: string): string => join(resolvDir, `${id}.conf`);

  function requireState(): State {
    if (!state) throw new Error('network manager used before init(): call init() first');
    return state;
  }

  async function readStoredSubnet(): Promise<Cidr | undefined> {
    try {
      return parseCidr((await readFile(subnetFile, 'utf8')).trim());
    } catch {
      return undefined;
    }
  }

  async function doInit(): Promise<void> {
    const started = Date.now();
    const problems = await checkNetworkHost();
    if (problems.length) throw new Error(problems.join('; '));
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n').catch((e: Error) => {
      throw new Error(`cannot enable net.ipv4.ip_forward (run as root on the host, not in a container): ${e.message}`);
    });
    await mkdir(leasesDir, { recursive: true });
    await mkdir(resolvDir, { recursive: true });

    const [resolv, routesOut, addrsOut] = await Promise.all([
      hostResolvers(),
      runOk('ip', ['-j', '-4', 'route', 'show', 'table', 'all']),
      runOk('ip', ['-j', '-4', 'addr', 'show']),
    ]);
    const routes = parseJson<IpRoute>(routesOut);
    const addrs = parseJson<IpAddr>(addrsOut);

    // Everything the host already routes or owns, except our own bridge from a previous run.
    const taken: Cidr[] = [];
    for (const r of routes) {
      if (r.dst === 'default' || r.dev === bridge) continue;
      try {
        taken.push(parseCidr(r.dst));
      } catch {
        // multicast/unreachable entries without a plain prefix are irrelevant here
      }
    }
    const lan: string[] = [];
    for (const a of addrs) {
      if (a.ifname === bridge) continue;
      for (const i of a.addr_info) {
        if (i.family !== 'inet') continue;
        taken.push(parseCidr(`${i.local}/${i.prefixlen}`));
        if (!a.flags.includes('LOOPBACK') && i.scope === 'global' && i.prefixlen >= 16) {
          lan.push(formatCidr(parseCidr(`${i.local}/${i.prefixlen}`)));
        }
      }
    }
    const resolverInts = resolv.nameservers.map(ipToInt);

    let subnet: Cidr;
    if (opts.subnet) {
      subnet = parseCidr(opts.subnet);
      if (subnet.prefix < 16 || subnet.prefix > 24) throw new Error(`sandbox subnet ${opts.subnet} must be /16 to /24`);
      const clash = taken.find((t) => overlaps(t, subnet));
      if (clash) throw new Error(`sandbox subnet ${opts.subnet} overlaps ${formatCidr(clash)} on this host: choose another`);
    } else {
      subnet = chooseSubnet(instance, taken, resolverInts, await readStoredSubnet());
    }
    const lastSlot = cidrSize(subnet) - 2;
    if ((vethPrefix + lastSlot.toString(16)).length > 15) {
      throw new Error(`instance "${instance}" is too long for a /${subnet.prefix} subnet (interface names max 15 chars)`);
    }
    const gateway = intToIp(subnet.base + 1);
    await writeFile(subnetFile, formatCidr(subnet) + '\n');

    // The uplink's MTU (e.g. 1400 on some clouds) so that sandboxes never send what it cannot carry.
    const defaultDev = routes.find((r) => r.dst === 'default')?.dev;
    const mtu = addrs.find((a) => a.ifname === defaultDev)?.mtu ?? 1500;

    // Leftovers go first: removing bridge ports later would reset the bridge MTU set below.
    await sweepExcept();
    const existing = addrs.find((a) => a.ifname === bridge);
    const lines: string[] = [];
    if (!existing) {
      const links = parseJson<IpLink>(await runOk('ip', ['-j', 'link', 'show']));
      if (!links.some((l) => l.ifname === bridge)) lines.push(`link add ${bridge} mtu ${mtu} type bridge`);
    }
    const want = `${gateway}/${subnet.prefix}`;
    const have = (existing?.addr_info ?? []).filter((i) => i.family === 'inet').map((i) => `${i.local}/${i.prefixlen}`);
    if (have.length !== 1 || have[0] !== want) {
      if (existing) lines.push(`addr flush dev ${bridge}`);
      lines.push(`addr add ${want} dev ${bridge}`);
    }
    // A fixed MAC: otherwise the bridge takes its ports' lowest MAC, and each change of it makes the
    // kernel flush the bridge's neighbour table, permanent sandbox entries included.
    const bridgeMac = slotNames(vethPrefix, subnet, 1).mac;
    lines.push(`link set dev ${bridge} address ${bridgeMac} mtu ${mtu} addrgenmode none up`);
    await ipBatchOk(lines);
    // No IPv6 on the bridge (no link-local address the sandboxes could talk to), no ICMP redirects.
    await writeFile(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, '1\n').catch(() => undefined);
    await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/send_redirects`, '0\n');

    const slots = [];
    for (let s = 2; s <= lastSlot; s++) slots.push(slotNames(vethPrefix, subnet, s));
    await runOk(
      'nft',
      ['-f', '-'],
      rulesScript({ table: instance, bridge, vethPrefix, subnet, slots, resolvers: resolv.nameservers, lan }),
    );

    state = { subnet, gateway, firstSlot: 2, lastSlot, resolv, mtu };
    log.info(
      { bridge, subnet: formatCidr(subnet), resolvers: resolv.nameservers, mtu, ms: Date.now() - started },
      'sandbox network ready',
    );
  }

  /** Reserves a free address slot: in memory first (same process), then an O_EXCL lease file. */
  async function allocate(st: State, id: string): Promise<number> {
    const count = st.lastSlot - st.firstSlot + 1;
    for (let i = 0; i < count; i++) {
      const slot = st.firstSlot + ((cursor + i) % count);
      if (slotsInUse.has(slot)) continue;
      slotsInUse.add(slot);
      try {
        await writeFile(join(leasesDir, String(slot)), id + '\n', { flag: 'wx' });
        // Hand out addresses round-robin so a freed one is not reused at once (stale conntrack/ARP).
        cursor = (slot - st.firstSlot + 1) % count;
        return slot;
      } catch (e) {
        slotsInUse.delete(slot);
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    throw new Error(`no free sandbox address left in ${formatCidr(st.subnet)}: destroy idle sandboxes`);
  }

  /**
   * Lines for `ip -force -batch` that remove one sandbox's host-side objects. `neigh del` comes
   * last: unlike the others, its "already gone" failure ends the batch even with -force.
   */
  function teardownLines(h: { ns: string; veth?: string; ip?: string }): string[] {
    const lines: string[] = [];
    // Deleting the host end deletes the pair even while a process still holds the netns.
    if (h.veth) lines.push(`link del dev ${h.veth}`);
    lines.push(`netns del ${h.ns}`);
    if (h.ip) lines.push(`neigh del ${h.ip} dev ${bridge}`);
    return lines;
  }

  /**
   * Runs cleanup commands, tolerating "already gone"; logs anything else. When a `neigh del` ended
   * the batch early, the remaining `neigh del` lines run one by one.
   */
  async function forceBatch(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    const r = await ipBatch(lines, { force: true, runner });
    const stderr = [r.stderr];
    if (r.code > 1) {
      const neigh = lines.filter((l) => l.startsWith('neigh del '));
      const rest = await Promise.all(neigh.map((l) => ipBatch([l], { force: true, runner })));
      stderr.push(...rest.map((x) => x.stderr));
    }
    const real = stderr
      .join('\n')
      .split('\n')
      .filter((l) => l.trim() && !GONE.test(l) && !/^Command failed/.test(l));
    if (real.length) log.warn({ errors: real }, 'network cleanup reported errors');
  }

  async function release(id: string, slot: number | undefined): Promise<void> {
    await rm(resolvPath(id), { force: true });
    if (slot !== undefined) {
      await rm(join(leasesDir, String(slot)), { force: true });
      slotsInUse.delete(slot);
    }
  }

  async function findLease(id: string): Promise<number | undefined> {
    for (const f of await readdir(leasesDir).catch(() => [] as string[])) {
      const text = await readFile(join(leasesDir, f), 'utf8').catch(() => '');
      if (text.trim() === id) return Number(f);
    }
    return undefined;
  }

  async function create(sandboxId: string): Promise<SandboxNetwork> {
    if (!SANDBOX_ID_RE.test(sandboxId)) throw new Error(`invalid sandbox id for the network: ${JSON.stringify(sandboxId)}`);
    const st = requireState();
    return withLock(sandboxId, async () => {
      const have = held.get(sandboxId);
      if (have) return result(have);
      const started = process.hrtime.bigint();
      let h: Held;
      try {
        h = await setUp(st, sandboxId);
      } catch (e) {
        // The rollback removed whatever was in the way (e.g. a veth a failed cleanup left): once more.
        log.warn({ sandboxId, err: (e as Error).message }, 'sandbox network setup failed, retrying once');
        h = await setUp(st, sandboxId);
      }
      log.debug(
        { sandboxId, ip: h.ip, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'sandbox network created',
      );
      return result(h);
    });
  }

  /** One attempt at a sandbox's network; on failure everything it made is removed again. */
  async function setUp(st: State, sandboxId: string): Promise<Held> {
    const slot = await allocate(st, sandboxId);
    const names = slotNames(vethPrefix, st.subnet, slot);
    const h: Held = { id: sandboxId, slot, ns: nsName(sandboxId), ...names, resolvConfPath: resolvPath(sandboxId) };
    held.set(sandboxId, h);
    try {
      const resolvWritten = writeFile(h.resolvConfPath, renderResolvConf(st.resolv));
      await ipBatchOk([
        `netns add ${h.ns}`,
        `link add ${h.veth} mtu ${st.mtu} master ${bridge} type veth peer name eth0 mtu ${st.mtu} address ${h.mac} netns ${h.ns}`,
        `link set dev ${h.veth} type bridge_slave isolated on`,
        `link set dev ${h.veth} addrgenmode none up`,
        // The host always sends to the real sandbox, whatever ARP replies others forge.
        `neigh replace ${h.ip} lladdr ${h.mac} dev ${bridge} nud permanent`,
      ], { runner });
      await ipBatchOk(
        [
          'link set dev lo up',
          'link set dev eth0 addrgenmode none',
          `addr add ${h.ip}/${st.subnet.prefix} dev eth0`,
          'link set dev eth0 up',
          `route add default via ${st.gateway} dev eth0`,
        ],
        { netns: h.ns, runner },
      );
      await resolvWritten;
      return h;
    } catch (e) {
      held.delete(sandboxId);
      await forceBatch(teardownLines(h));
      await release(sandboxId, slot);
      throw e;
    }
  }

  function result(h: Held): SandboxNetwork {
    return { netnsPath: join(NETNS_DIR, h.ns), ipAddress: h.ip, resolvConfPath: h.resolvConfPath };
  }

  async function destroy(sandboxId: string): Promise<void> {
    if (!SANDBOX_ID_RE.test(sandboxId)) return;
    await withLock(sandboxId, async () => {
      const h = held.get(sandboxId);
      if (h) {
        held.delete(sandboxId);
        await forceBatch(teardownLines(h));
        await release(sandboxId, h.slot);
        return;
      }
      // Not ours in memory (e.g. after a restart without sweep): derive what we can.
      const slot = await findLease(sandboxId);
      const names = slot !== undefined && state ? slotNames(vethPrefix, state.subnet, slot) : undefined;
      await forceBatch(teardownLines({ ns: nsName(sandboxId), veth: names?.veth, ip: names?.ip }));
      await release(sandboxId, slot);
    });
  }

  /**
   * Removes whatever of this instance is not held by this manager; with `deleteBridge` (shutdown)
   * also the bridge, which takes its neighbour entries with it.
   */
  async function sweepExcept(deleteBridge = false): Promise<void> {
    const keepNs = new Set([...held.values()].map((h) => h.ns));
    const keepVeth = new Set([...held.values()].map((h) => h.veth));
    const keepIp = new Set([...held.values()].map((h) => h.ip));
    // Reserved slots include creates still in flight (lease written, not yet held).
    const keepSlot = new Set([...slotsInUse, ...[...held.values()].map((h) => h.slot)].map(String));
    const keepResolv = new Set([...held.values()].map((h) => `${h.id}.conf`));

    const [linksOut, neighOut, nsList, leases, resolvs] = await Promise.all([
      runOk('ip', ['-j', 'link', 'show']),
      run('ip', ['-j', '-4', 'neigh', 'show', 'dev', bridge, 'nud', 'permanent']),
      readdir(NETNS_DIR).catch(() => [] as string[]),
      readdir(leasesDir).catch(() => [] as string[]),
      readdir(resolvDir).catch(() => [] as string[]),
    ]);
    const lines: string[] = [];
    for (const l of parseJson<IpLink>(linksOut)) {
      if (l.ifname.startsWith(vethPrefix) && !keepVeth.has(l.ifname)) lines.push(`link del dev ${l.ifname}`);
    }
    for (const ns of nsList) {
      if (ns.startsWith(`${instance}-`) && !keepNs.has(ns)) lines.push(`netns del ${ns}`);
    }
    if (deleteBridge) lines.push(`link del dev ${bridge}`);
    else if (neighOut.code === 0) {
      for (const n of parseJson<{ dst: string }>(neighOut.stdout)) {
        if (!keepIp.has(n.dst)) lines.push(`neigh del ${n.dst} dev ${bridge}`);
      }
    }
    const removed = lines.length;
    await forceBatch(lines);
    await Promise.all([
      ...leases.filter((f) => !keepSlot.has(f)).map((f) => unlink(join(leasesDir, f)).catch(() => undefined)),
      ...resolvs.filter((f) => !keepResolv.has(f)).map((f) => unlink(join(resolvDir, f)).catch(() => undefined)),
    ]);
    if (removed) log.info({ removed }, 'swept leftover sandbox network objects');
  }

  async function sweep(): Promise<void> {
    await sweepExcept();
  }

  async function shutdown(): Promise<void> {
    if (initializing) await initializing.catch(() => undefined);
    await Promise.all([...locks.values()]);
    held.clear();
    slotsInUse.clear();
    await sweepExcept(true);
    await runOk('nft', ['-f', '-'], deleteTablesScript(instance));
    await rm(leasesDir, { recursive: true, force: true });
    await rm(resolvDir, { recursive: true, force: true });
    state = undefined;
    initializing = undefined;
    log.info('sandbox network removed');
  }

  return {
    init() {
      const p = (initializing ?? Promise.resolve()).catch(() => undefined).then(doInit);
      initializing = p;
      return p;
    },
    create,
    destroy,
    sweep,
    shutdown,
    counters(sandboxId) {
      const h = held.get(sandboxId);
      if (!h) return { egressBytes: 0, ingressBytes: 0 };
      // The host end's rx is what the sandbox sent.
      const read = (name: string) => Number(readFileSyncOrEmpty(`/sys/class/net/${h.veth}/statistics/${name}`).trim() || 0);
      return { egressBytes: read('rx_bytes'), ingressBytes: read('tx_bytes') };
    },
    info() {
      const st = requireState();
      return { bridge, subnet: formatCidr(st.subnet), gateway: st.gateway, resolvers: st.resolv.nameservers };
    },
  };
}

function readFileSyncOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
