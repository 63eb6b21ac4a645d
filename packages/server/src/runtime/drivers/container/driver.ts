/**
 * The `container` runtime driver: every sandbox is a crun container whose PID 1 is the guest agent
 * (native/guest-agent.c), with an overlay root on the read-only erofs base image, its own cgroup,
 * namespaces, seccomp profile and (through the network manager) network namespace.
 *
 * Sandboxes run in a user namespace (root inside = host uid ID_BASE, see image.ts). Host layout:
 * `<dataDir>/runtime/` holds `image/<version>` (the erofs image, loop-mounted once per daemon),
 * `templates/` and `sb/<id>/` (config, writable layer, log); `/run/mags/<instance>/` (a tmpfs)
 * holds `crun/` (crun's state, `--root`) and what crun opens from inside the user namespace
 * (`mags-guest`, `<id>/rootfs`, `<id>/run`, `<id>/resolv.conf`). Sandbox ids and cgroups (`/<instance>/<id>`) carry
 * the instance prefix; init() sweeps what a crashed daemon of the same instance left.
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { listenForGuest } from '../../../guest/client.js';
import { Cgroups } from './cgroups.js';
import type { RuntimeDriver, RuntimeHealth, Sandbox, SandboxLimits, SandboxSpec, SandboxStats } from '../../driver.js';
import { run } from '../../../host/exec.js';
import { findImage, buildImage, ID_COUNT } from '../../image.js';
import { Layers, waitLoopReleased } from './layers.js';
import { mountsUnder, unmountUnder } from '../../../host/mounts.js';
import { run as netRun } from '../../../network/exec.js';
import { createNetworkManager, type NetworkManager } from '../../../network/manager.js';
import { fileReserve, fitReport, parentLimits, readHostFacts } from './host-limits.js';
import { ociConfig, SANDBOX_NOFILE } from './oci.js';
import { HostSpawner } from './spawner.js';
import { isBackground } from '../../priority.js';
import { ContainerSandbox, type SandboxHost } from './sandbox.js';
import { LxcfsView } from './lxcfs.js';
import { ProcViewRepair } from './procview.js';
import { CpuPlacer, parseCpuList } from './cpus.js';
import { UidSlots, type Slot } from './slots.js';

/** Options of the crun container driver. */
export interface ContainerDriverOptions {
  /** Daemon state directory (MAGS_DATA_DIR); sandbox state lives under it. */
  dataDir: string;
  /** Where base images are built and cached (MAGS_IMAGE_DIR). */
  imageDir: string;
  /** Instance prefix from instancePrefix(dataDir); every host resource carries it. */
  instance: string;
  log: Logger;
  /** Debian mirror used when the image has to be built (MAGS_DEBIAN_MIRROR). */
  debianMirror?: string;
  /**
   * Network manager for sandboxes with `network !== false`; default: createNetworkManager for this
   * instance. `null`: no networking, every sandbox gets an empty network namespace (loopback only).
   */
  network?: NetworkManager | null;
  /** How long create() waits for the guest agent (default 10 s). */
  agentTimeoutMs?: number;
  /**
   * Most sandboxes that exist at once and their pids limit, for the start-up check against the
   * host's pid_max and fs.file-max (default: 42 sandboxes of 1024 processes, the defaults of
   * MAGS_MAX_CONCURRENT_JOBS + MAGS_POOL_MAX_SIZE).
   */
  capacity?: { maxSandboxes: number; pidsPerSandbox: number };
  /** Pin each sandbox to ceil(vcpus) CPUs (MAGS_SANDBOX_CPUSET=pin, the default); false: every CPU. */
  cpuset?: boolean;
}

/** Where the guest agent's source and build script live (packages/server/native). */
export const NATIVE_DIR = fileURLToPath(new URL('../../../../../native/', import.meta.url));

/** Builds native/build/mags-guest when missing, older than its sources, or `force`; returns its path. */
export async function buildGuestAgent(force = false): Promise<string> {
  const binary = join(NATIVE_DIR, 'build', 'mags-guest');
  const built = await stat(binary).catch(() => null);
  const sources = await Promise.all(['guest-agent.c', 'frame.c', 'frame.h', 'host-helpers.c', 'guest-fs.c', 'guest-fs.h', 'guest-fs-serve.c'].map((f) => stat(join(NATIVE_DIR, f)).catch(() => null)));
  const stale = built !== null && sources.some((s) => s !== null && s.mtimeMs > built.mtimeMs);
  if (!force && built && !stale) return binary;
  try {
    await run('sh', [join(NATIVE_DIR, 'build.sh')], { what: 'a C compiler is needed: apt-get install musl-tools (or gcc)' });
  } catch (err) {
    // An installed tree without a compiler still works with the binary it has.
    if (built && !force) return binary;
    throw err;
  }
  return binary;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(delimiter)
    .concat(['/usr/sbin', '/sbin'])
    .some((d) => existsSync(join(d, cmd)));
}

const HOST_TOOLS: Array<[string, string]> = [
  ['crun', 'apt-get install crun'],
  ['mount', 'apt-get install mount'],
  ['mkfs.ext4', 'apt-get install e2fsprogs'],
  ['losetup', 'apt-get install mount'],
];

async function nofileHardLimit(): Promise<number> {
  const text = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(text);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : 1024 * 1024;
}

/** Why user namespaces cannot be created here, or null. */
async function userNamespaceProblem(): Promise<string | null> {
  const max = await readFile('/proc/sys/user/max_user_namespaces', 'utf8').catch(() => null);
  if (max === null) return 'the kernel lacks user namespaces (CONFIG_USER_NS), which sandboxes run in';
  if (Number(max.trim()) === 0) return 'user namespaces are disabled: sysctl -w user.max_user_namespaces=65536';
  return null;
}

/** How long a create waits for an lxcfs restart under way before starting without the /proc view. */
const LXCFS_CREATE_WAIT_MS = 3_000;

/** oom_score_adj of every sandbox process (and its floor): sandboxes go before host processes. */
export const SANDBOX_OOM_SCORE_ADJ = 500;

/** Creates the crun-based runtime driver. */
export function createContainerDriver(opts: ContainerDriverOptions): RuntimeDriver {
  return new ContainerDriver(opts);
}

class ContainerDriver implements RuntimeDriver, SandboxHost {
  readonly name = 'container';
  private readonly log: Logger;
  private readonly runtimeDir: string;
  private readonly crunRoot: string;
  private readonly sbDir: string;
  /**
   * What crun itself must reach: the overlay root mount points, the /run/mags sources, the agent
   * binary. In a user namespace crun resolves these paths as an unprivileged host user, who cannot
   * enter the data dir (mode 0700): so they live in /run/mags/<instance> (mode 0711, no listing).
   */
  private readonly exposedDir: string;
  private readonly agentPath: string;
  private readonly cgroups: Cgroups;
  private layers: Layers;
  /** Host id of root in the sandboxes (user namespace), from the image manifest; null = no user namespace. */
  private idBase: number | null = null;
  /** Host commands of work a job waits for (cold starts, wakes, exec helpers). */
  private readonly fgSpawner: HostSpawner;
  /** Host commands of background work (`inBackground`: pool refill, teardown), at a low CPU weight. */
  private readonly bgSpawner: HostSpawner;
  private maintenanceProcs: string | null = null;
  private network: NetworkManager | null;
  private networkProblem: string | null = null;
  private imageMount: string | null = null;
  private currentImageVersion: string | null = null;
  /** Older image versions mounted on demand for workspaces created on them (version -> mount). */
  private readonly olderImages = new Map<string, Promise<string>>();
  private nofileHard = 1024;
  /** Whether writing the agent's oom_score_adj also sets the floor its processes inherit (CAP_SYS_RESOURCE). */
  private canPinOomFloor = false;
  private initialized = false;
  /** The compiled seccomp filter crun saved for the first sandbox, reused by later ones. */
  private seccompBpf: string | undefined;
  private readonly sandboxes = new Map<string, ContainerSandbox>();
  private readonly destroyers = new Map<string, Promise<void>>();
  private readonly pendingCreates = new Set<Promise<unknown>>();
  /** Loop device of each sandbox's layer, waited for on teardown. */
  private readonly loops = new Map<string, string>();
  /** The /proc view of each sandbox's own limits (LXCFS). */
  private readonly lxcfs: LxcfsView;
  /** Mounts a restarted lxcfs into the sandboxes that run already. */
  private readonly procViews: ProcViewRepair;
  /** Each sandbox's cpuset, so the CPU count it sees matches its vcpus; null where cpusets are unavailable. */
  private cpus: CpuPlacer | null = null;
  /** Host uid ranges and user namespaces of sandboxes; null when sandboxes run without a user namespace. */
  private slots: UidSlots | null = null;
  private readonly slotOf = new Map<string, Slot>();

  constructor(private readonly opts: ContainerDriverOptions) {
    this.log = opts.log;
    this.runtimeDir = join(opts.dataDir, 'runtime');
    this.exposedDir = join('/run/mags', opts.instance);
    this.crunRoot = join(this.exposedDir, 'crun');
    this.agentPath = join(this.exposedDir, 'mags-guest');
    this.sbDir = join(this.runtimeDir, 'sb');
    this.cgroups = new Cgroups(opts.instance, opts.log);
    this.fgSpawner = new HostSpawner(this.agentPath, opts.log);
    this.bgSpawner = new HostSpawner(this.agentPath, opts.log, () => (this.maintenanceProcs ? [this.maintenanceProcs] : []));
    this.lxcfs = new LxcfsView({ mountDir: join(this.exposedDir, 'lxcfs'), log: opts.log.child({ component: 'lxcfs' }) });
    this.procViews = new ProcViewRepair({
      view: this.lxcfs,
      helper: (args) => this.spawner.run(this.agentPath, args, { timeoutMs: 30_000 }),
      log: opts.log.child({ component: 'lxcfs' }),
    });
    this.lxcfs.onStarted(() => {
      this.procViews.repairAll().catch((err: unknown) => this.log.error({ err }, 'repairing the sandboxes\' lxcfs view failed'));
    });
    this.layers = this.makeLayers(0);
    this.network =
      opts.network === undefined
        ? createNetworkManager({
            instance: opts.instance,
            dataDir: opts.dataDir,
            log: opts.log.child({ component: 'network' }),
            runner: (cmd, args, input) => this.spawnerRun(cmd, args, input),
          })
        : opts.network;
  }

  async init(onProgress: (message: string) => void = () => {}): Promise<void> {
    const missing = HOST_TOOLS.filter(([cmd]) => !onPath(cmd)).map(([cmd, fix]) => `${cmd} not found: ${fix}`);
    if (missing.length) throw new Error(`the container runtime cannot start: ${missing.join('; ')}`);
    await this.cgroups.init();
    const cgProblems = this.cgroups.problems();
    if (cgProblems.length) throw new Error(`the container runtime cannot start: ${cgProblems.join('; ')}`);
    this.nofileHard = await nofileHardLimit();

    const image =
      findImage(this.opts.imageDir) ??
      (await buildImage({ imageDir: this.opts.imageDir, mirror: this.opts.debianMirror, onProgress, log: this.log.child({ component: 'image' }) }));
    // Images whose files are shifted into the sandbox id range run in a user namespace.
    const manifest = JSON.parse(await readFile(join(dirname(image.path), 'manifest.json'), 'utf8').catch(() => '{}')) as { id_base?: number };
    this.idBase = typeof manifest.id_base === 'number' ? manifest.id_base : null;
    const userns = await userNamespaceProblem();
    if (this.idBase !== null && userns) throw new Error(`the container runtime cannot start: ${userns}`);
    this.layers = this.makeLayers(this.idBase ?? 0);

    const built = await buildGuestAgent();
    await this.sweep(onProgress);
    // After the sweep: nothing of a crashed run is left in the parent.
    await this.limitParent();
    await mkdir(this.runtimeDir, { recursive: true, mode: 0o700 });
    await mkdir(this.sbDir, { recursive: true, mode: 0o700 });
    for (const dir of ['/run/mags', this.exposedDir]) {
      await mkdir(dir, { recursive: true });
      await chmod(dir, 0o711);
    }
    // The small files every sandbox creates and deletes (crun state, mount points, the agent socket)
    // live in memory: on a disk file system each create and delete costs more, and on ext4 without
    // a journal every new inode skips past all inodes deleted in the last hours, which took ~7% of
    // the host CPU at 40 sandboxes/s.
    await run('mount', ['-t', 'tmpfs', '-o', 'mode=0711,nosuid,nodev', 'mags-run', this.exposedDir], { what: 'the kernel needs tmpfs' });
    await mkdir(this.crunRoot, { recursive: true, mode: 0o700 });
    const tmpAgent = `${this.agentPath}.tmp-${process.pid}`;
    await copyFile(built, tmpAgent);
    await chmod(tmpAgent, 0o755);
    await rename(tmpAgent, this.agentPath);

    this.currentImageVersion = image.version;
    this.imageMount = join(this.runtimeDir, 'image', image.version);
    await mkdir(this.imageMount, { recursive: true });
    await run('mount', ['-t', 'erofs', '-o', 'ro,loop', image.path, this.imageMount], { what: 'the kernel needs erofs support' });
    this.slots =
      this.idBase === null
        ? null
        : new UidSlots({
            idBase: this.idBase,
            nsDir: join(this.exposedDir, 'slots'),
            imageDir: join(this.runtimeDir, 'image', 'slots'),
            image: this.imageMount,
            helper: (args) => this.spawner.run(this.agentPath, args, { timeoutMs: 30_000 }),
          });
    const cpuList = this.cgroups.sandboxCpus();
    this.cpus = cpuList && this.opts.cpuset !== false ? new CpuPlacer(parseCpuList(cpuList)) : null;
    if (onPath('lxcfs')) await this.lxcfs.start();
    else this.log.warn('lxcfs not found: sandboxes see the host\'s memory and CPUs in /proc (apt-get install lxcfs)');
    this.log.info({ image: image.version, cgroups: this.cgroups.mode }, 'container runtime ready');

    if (this.network) {
      try {
        await this.network.init();
        this.networkProblem = null;
      } catch (err) {
        this.networkProblem = `sandbox networking is unavailable (${(err as Error).message}); sandboxes get loopback only`;
        this.log.error({ err }, this.networkProblem);
      }
    }
    this.initialized = true;
  }

  /** Sets the parent cgroup's limits and logs whether the worst case fits the host's global tables. */
  private async limitParent(): Promise<void> {
    const host = await readHostFacts();
    const parent = parentLimits(host);
    await this.cgroups.setParentLimits(parent);
    this.maintenanceProcs = await this.cgroups.makeMaintenance();
    const cap = this.opts.capacity ?? { maxSandboxes: 42, pidsPerSandbox: 1024 };
    const fit = fitReport(host, parent, { maxSandboxes: cap.maxSandboxes, pids: cap.pidsPerSandbox, nofile: Math.min(SANDBOX_NOFILE, this.nofileHard) });
    this.log.info({ host, parent, fit }, 'sandbox parent cgroup limited; host reserve kept');
    const status = await readFile('/proc/self/status', 'utf8');
    const capEff = BigInt('0x' + (/^CapEff:\s+([0-9a-f]+)/m.exec(status)?.[1] ?? '0'));
    this.canPinOomFloor = (capEff & (1n << 24n)) !== 0n;
    if (!this.canPinOomFloor) {
      this.log.warn(`the daemon lacks CAP_SYS_RESOURCE: scripts start at oom_score_adj ${SANDBOX_OOM_SCORE_ADJ} and can lower it to 0 (the agent's), never below; the parent cgroup still keeps OOM kills among sandboxes`);
    }
    if (!fit.pidsFit) {
      this.log.warn({ fit }, `${fit.maxSandboxes} sandboxes x ${cap.pidsPerSandbox} processes = ${fit.pidsNeeded} > ${fit.pidsAvailable} (pid_max less the host reserve): the parent cgroup's pids.max stops them first; raise kernel.pid_max or lower MAGS_MAX_CONCURRENT_JOBS`);
    }
    if (!fit.filesFit) {
      this.log.warn({ fit }, `worst case of open files ${fit.filesNeeded} (min(sandboxes x processes, parent pids.max) x ${SANDBOX_NOFILE}) > ${fit.filesAvailable} (fs.file-max less the host reserve): raise it with sysctl -w fs.file-max=${fit.filesNeeded + fileReserve(host.fileMax)} (open files are also charged to each sandbox's memory limit)`);
    }
  }

  /** The spawner of the calling context: background work runs its commands at a low CPU weight. */
  private get spawner(): HostSpawner {
    return isBackground() ? this.bgSpawner : this.fgSpawner;
  }

  /** A host command through the spawner, with the exit status as a result (net/exec's Runner). */
  private async spawnerRun(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const r = await this.spawner.run(cmd, args, { input, timeoutMs: 30_000 });
      return { code: 0, ...r };
    } catch (err) {
      const e = err as Error & { exitCode?: number | null; stdout?: string; stderr?: string };
      if (e.stderr !== undefined) return { code: e.exitCode ?? 128, stdout: e.stdout ?? '', stderr: e.stderr };
      if (/did not finish within/.test(e.message)) return { code: 124, stdout: '', stderr: e.message };
      // The spawner itself failed (not the command): fork from Node instead.
      this.log.warn({ err, cmd }, 'host process spawner failed; running the network command directly');
      return netRun(cmd, args, input);
    }
  }

  private makeLayers(rootId: number): Layers {
    return new Layers(join(this.runtimeDir, 'templates'), this.agentPath, rootId, (cmd, args) => this.spawner.run(cmd, args));
  }

  /** Removes crun containers, mounts, loop devices, cgroups and directories this instance left behind. */
  private async sweep(onProgress: (message: string) => void): Promise<void> {
    let containers = 0;
    await this.cgroups.thawAll();
    // Also where earlier versions kept crun's state (in the data dir).
    for (const crunRoot of [this.crunRoot, join(this.runtimeDir, 'crun')]) {
      for (const id of await readdir(crunRoot).catch(() => [] as string[])) {
        if (!id.startsWith(this.opts.instance)) continue;
        await run('crun', ['--root', crunRoot, 'delete', '--force', id], { timeoutMs: 30_000 }).catch(() => rm(join(crunRoot, id), { recursive: true, force: true }));
        containers++;
      }
    }
    await rm(join(this.runtimeDir, 'crun'), { recursive: true, force: true });
    // A crashed daemon's lxcfs exits once its mount is gone; its pid file names it in case it hangs.
    const lxcfsPid = Number((await readFile(join(this.exposedDir, 'lxcfs.pid'), 'utf8').catch(() => '')).trim());
    if (Number.isInteger(lxcfsPid) && lxcfsPid > 1 && (await readFile(`/proc/${lxcfsPid}/comm`, 'utf8').catch(() => '')).trim() === 'lxcfs') process.kill(lxcfsPid, 'SIGKILL');
    await unmountUnder(this.exposedDir);
    await unmountUnder(this.runtimeDir);
    const loops = await this.detachLoops();
    const cgroups = await this.cgroups.sweep();
    for (const dir of [this.exposedDir, this.sbDir, join(this.runtimeDir, 'image'), join(this.runtimeDir, 'templates')]) {
      if ((await mountsUnder(dir)).length === 0) await rm(dir, { recursive: true, force: true });
    }
    if (containers + loops + cgroups > 0) {
      const msg = `swept what a previous run left: ${containers} containers, ${loops} loop devices, ${cgroups} cgroups`;
      this.log.warn(msg);
      onProgress(msg);
    }
  }

  /** Detaches loop devices whose backing file lies in our directories. */
  private async detachLoops(): Promise<number> {
    const out = await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE']).catch(() => ({ stdout: '' }));
    if (!out.stdout.trim()) return 0;
    let n = 0;
    const devices = (JSON.parse(out.stdout) as { loopdevices?: Array<{ name: string; 'back-file'?: string }> }).loopdevices ?? [];
    for (const d of devices) {
      const file = (d['back-file'] ?? '').replace(/ \(deleted\)$/, '');
      if (file.startsWith(this.runtimeDir + '/')) {
        await run('losetup', ['-d', d.name]).catch(() => {});
        n++;
      }
    }
    return n;
  }

  /** The mounted image of `version` when the image directory has it, else the current image. */
  private imageMountFor(version: string | undefined): Promise<string> {
    const current = this.imageMount!;
    if (!version || version === this.currentImageVersion || !/^[0-9a-f]{6,64}$/.test(version)) return Promise.resolve(current);
    const path = join(this.opts.imageDir, version, 'rootfs.erofs');
    if (!existsSync(path)) return Promise.resolve(current);
    let p = this.olderImages.get(version);
    if (!p) {
      p = (async () => {
        const mnt = join(this.runtimeDir, 'image', version);
        await mkdir(mnt, { recursive: true });
        await run('mount', ['-t', 'erofs', '-o', 'ro,loop', path, mnt], { what: 'the kernel needs erofs support' });
        this.log.info({ image: version }, 'mounted an older image for a workspace created on it');
        return mnt;
      })();
      p.catch(() => this.olderImages.delete(version));
      this.olderImages.set(version, p);
    }
    return p;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (!this.initialized || !this.imageMount) throw new Error('the container driver is not initialised: call init() first');
    const p = this.createSandbox(spec);
    this.pendingCreates.add(p);
    try {
      return await p;
    } finally {
      this.pendingCreates.delete(p);
    }
  }

  private async createSandbox(spec: SandboxSpec): Promise<ContainerSandbox> {
    const id = `${this.opts.instance}-${randomBytes(4).toString('hex')}`;
    const log = this.log.child({ sandbox: id });
    const dir = join(this.sbDir, id);
    const xdir = join(this.exposedDir, id);
    const runDir = join(xdir, 'run');
    const rootfs = join(xdir, 'rootfs');
    const useNetwork = spec.network !== false && this.network !== null && this.networkProblem === null;
    let server: import('node:net').Server | undefined;
    const state: CreatedState = { id, dir, xdir, spec, useNetwork, started: false };
    const t0 = performance.now();
    const ms: Record<string, number> = {};
    const lap = (name: string) => (ms[name] = Math.round((performance.now() - t0) * 100) / 100);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // Searchable by root in the sandbox (an unprivileged host user); only this sandbox sees it.
      await mkdir(runDir, { recursive: true, mode: 0o755 });
      await mkdir(rootfs, { mode: 0o755 });
      await writeFile(join(runDir, 'agent'), '');
      const imageMount = await this.imageMountFor(spec.imageVersion);
      const slot = this.slots ? await this.slots.acquire() : undefined;
      if (slot) this.slotOf.set(id, slot);
      // Host directories in the image's id range (workspace layers, an older image) are idmapped to
      // the slot's ids; the current image has its idmapped mount per slot already.
      const ownImage = imageMount === this.imageMount;
      const mapped = (spec.extraLowerDirs?.length ?? 0) + (ownImage ? 0 : 1);
      const listening = listenForGuest(join(runDir, 'host.sock'));
      // Settle all three before looking at errors, so a failure never races the cleanup.
      const settled = await Promise.allSettled([
        useNetwork ? this.network!.create(id).then(async (n) => (await this.mountSysfs(n.netnsPath, join(xdir, 'sys')), n)) : Promise.resolve(undefined),
        this.layers.create({
          sandboxDir: dir,
          rootfs,
          sandboxId: id,
          imageMount: slot && ownImage ? slot.imageMount : imageMount,
          extraLowerDirs: spec.extraLowerDirs,
          workspaceLayerDir: spec.workspaceLayerDir,
          diskGb: spec.limits.diskGb,
          rootId: slot?.base,
          idmap: slot && (mapped > 0 || spec.workspaceLayerDir) ? { nsPath: slot.idmapPath, lowers: mapped } : undefined,
        }),
        listening,
      ]);
      if (settled[2].status === 'fulfilled') server = settled[2].value.server;
      if (settled[1].status === 'fulfilled' && settled[1].value.loopDevice) this.loops.set(id, settled[1].value.loopDevice);
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const net = (settled[0] as PromiseFulfilledResult<Awaited<ReturnType<NetworkManager['create']>> | undefined>).value;
      const listener = (settled[2] as PromiseFulfilledResult<Awaited<typeof listening>>).value;
      lap('layersAndNetwork');
      let resolvConf: string | undefined;
      if (net) {
        // A copy crun can reach (the network manager keeps its files in the data dir).
        resolvConf = join(xdir, 'resolv.conf');
        await copyFile(net.resolvConfPath, resolvConf);
        await chmod(resolvConf, 0o644);
      }
      const cpus = this.cpus?.place(id, spec.limits.vcpus);
      const configWith = (extraMounts: Array<Record<string, unknown>>) => ociConfig({
        rootfs,
        hostname: 'mags-vm',
        runDir,
        agentPath: this.agentPath,
        cgroupsPath: this.cgroups.path(id),
        limits: spec.limits,
        cpus,
        extraMounts,
        netnsPath: net?.netnsPath,
        resolvConfPath: resolvConf,
        sysfsPath: net ? join(xdir, 'sys') : undefined,
        nofileHard: this.nofileHard,
        swapLimit: this.cgroups.hasSwapLimit(),
        seccompBpf: this.seccompBpf,
        idMap: slot ? { base: slot.base, count: ID_COUNT } : this.idBase !== null ? { base: this.idBase, count: ID_COUNT } : undefined,
        userNamespacePath: slot?.nsPath,
        annotations: Object.fromEntries(Object.entries(spec.labels ?? {}).map(([k, v]) => [`mags.${k}`, v])),
      });
      // A restart of lxcfs under way is waited for, within a bound; past it the sandbox starts without
      // the /proc view and gets it when lxcfs is back (ProcViewRepair).
      await this.lxcfs.waitLive(LXCFS_CREATE_WAIT_MS);
      let viewGeneration = this.lxcfs.active ? this.lxcfs.generation : 0;
      await writeFile(join(dir, 'config.json'), JSON.stringify(configWith(this.lxcfs.mounts())));
      state.started = true;
      try {
        await this.crunRun(id, dir);
      } catch (err) {
        // lxcfs died between the config and crun's bind mounts of its files: start without them.
        if (viewGeneration === 0 || (this.lxcfs.active && this.lxcfs.generation === viewGeneration)) throw err;
        log.warn({ err }, 'lxcfs went away while the sandbox started; starting it without the /proc view until lxcfs is back');
        await this.spawner.run('crun', ['--root', this.crunRoot, 'delete', '--force', id], { timeoutMs: 30_000 }).catch((e: Error) => log.debug({ err: e }, 'crun delete after the failed start'));
        viewGeneration = 0;
        await writeFile(join(dir, 'config.json'), JSON.stringify(configWith([])));
        await this.crunRun(id, dir);
      }
      const agentPid = await this.pinOomScore(dir);
      await this.procViews.track(id, agentPid, viewGeneration);
      lap('crun');
      if (!this.seccompBpf) {
        const bpf = await readFile(join(this.crunRoot, id, 'seccomp.bpf')).catch(() => null);
        if (bpf && bpf.length > 0) this.seccompBpf = bpf.toString('base64');
      }
      const timeoutMs = this.opts.agentTimeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const agent = await Promise.race([
        listener.connected,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the guest agent did not connect within ${timeoutMs} ms (see ${join(dir, 'agent.log')})`)), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
      const sandbox = new ContainerSandbox(id, spec, net?.ipAddress, agent, this, runDir);
      sandbox.hostIdBase = slot?.base ?? this.idBase ?? undefined;
      agent.onClose(() => {
        if (!sandbox.destroyed) log.warn('guest agent connection closed unexpectedly (the sandbox stopped)');
      });
      await sandbox.start();
      lap('agent');
      this.sandboxes.set(id, sandbox);
      log.debug({ network: useNetwork, ip: net?.ipAddress, ms }, 'sandbox created');
      return sandbox;
    } catch (err) {
      server?.close();
      log.warn({ err }, 'sandbox creation failed; cleaning up');
      await this.teardown(state).catch((e: unknown) => log.error({ err: e }, 'cleanup after failed create failed'));
      throw err;
    }
  }

  /**
   * Mounts a sysfs from inside the sandbox's network namespace (so its /sys/class/net lists the
   * sandbox's interfaces, not the host's) at `target`, for the OCI config to bind-mount at /sys.
   * crun cannot mount it itself: the namespace belongs to host root, not to the sandbox's user namespace.
   */
  private async mountSysfs(netnsPath: string, target: string): Promise<void> {
    await mkdir(target, { mode: 0o755 });
    await this.spawner.run(this.agentPath, ['sysfs', netnsPath, target], { timeoutMs: 30_000 });
  }

  /**
   * Orders OOM kills: scripts first, the agent last. With CAP_SYS_RESOURCE the daemon writes
   * SANDBOX_OOM_SCORE_ADJ to the agent, which also sets the floor (oom_score_adj_min) every process of
   * the sandbox inherits: a script can raise its score but never lower it below that, so sandboxes die
   * before the daemon and host processes, and a script never outlives the (tiny) agent. Without it no
   * floor can be set: the agent then stays at 0, the lowest score an unprivileged process can give
   * itself, while the agent starts every script at SANDBOX_OOM_SCORE_ADJ; a script may lower its own
   * to 0, which ties with the agent and with host processes (the kernel then kills the biggest).
   */
  private async pinOomScore(bundle: string): Promise<number> {
    const pid = Number((await readFile(join(bundle, 'agent.pid'), 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`crun wrote no agent pid to ${join(bundle, 'agent.pid')}`);
    await writeFile(`/proc/${pid}/oom_score_adj`, this.canPinOomFloor ? String(SANDBOX_OOM_SCORE_ADJ) : '0');
    return pid;
  }


  /**
   * `crun run --detach`: returns once the agent process started. The agent inherits crun's stdout
   * and stderr, so both go to the sandbox's agent.log (a pipe would stay open as long as the sandbox).
   */
  private async crunRun(id: string, bundle: string): Promise<void> {
    const logPath = join(bundle, 'agent.log');
    try {
      await this.spawner.run('crun', ['--root', this.crunRoot, 'run', '--detach', '--pid-file', join(bundle, 'agent.pid'), '--bundle', bundle, id], { logFile: logPath, timeoutMs: 30_000 });
    } catch (err) {
      const text = await readFile(logPath, 'utf8').catch(() => '');
      throw new Error(`crun run failed: ${text.trim().split('\n').slice(-5).join(' / ') || (err as Error).message}`);
    }
  }

  list(): Sandbox[] {
    return [...this.sandboxes.values()];
  }

  async health(): Promise<RuntimeHealth> {
    const problems = HOST_TOOLS.filter(([cmd]) => !onPath(cmd)).map(([cmd, fix]) => `${cmd} not found: ${fix}`);
    const fs = await readFile('/proc/filesystems', 'utf8').catch(() => '');
    if (!/\berofs\b/.test(fs)) problems.push('the kernel lacks erofs (needed for the base image): modprobe erofs');
    if (!/\boverlay\b/.test(fs)) problems.push('the kernel lacks overlayfs: modprobe overlay');
    if (!onPath('debootstrap')) problems.push('debootstrap not found (needed to build the base image): apt-get install debootstrap');
    if (!onPath('mkfs.erofs')) problems.push('mkfs.erofs not found (needed to build the base image): apt-get install erofs-utils');
    problems.push(...this.cgroups.problems());
    const userns = await userNamespaceProblem();
    if (userns) problems.push(userns);
    if (!findImage(this.opts.imageDir)) problems.push('the base image is not built: mags server image build');
    if (!existsSync(this.agentPath) && !existsSync(join(NATIVE_DIR, 'build', 'mags-guest'))) {
      problems.push('the guest agent is not built: sh packages/server/native/build.sh (needs musl-tools or gcc)');
    }
    if (this.networkProblem) problems.push(this.networkProblem);
    if (!this.initialized) problems.push('the container runtime is not initialised');
    return { ok: problems.length === 0, problems };
  }

  // ---- SandboxHost ----

  oomKills(id: string): Promise<number> {
    return this.cgroups.oomKills(id);
  }

  updateLimits(id: string, limits: Partial<Omit<SandboxLimits, 'diskGb'>>): Promise<void> {
    const cpus = limits.vcpus !== undefined && this.cpus ? this.cpus.place(id, limits.vcpus) : undefined;
    return this.cgroups.update(id, { ...limits, cpus });
  }

  /** The /proc view (tests check its supervision). */
  get procView(): LxcfsView {
    return this.lxcfs;
  }

  /** Its repair in running sandboxes after a restart (tests read the last report). */
  get procViewRepair(): ProcViewRepair {
    return this.procViews;
  }

  freeze(id: string, frozen: boolean): Promise<void> {
    return this.cgroups.freeze(id, frozen);
  }

  async stats(id: string): Promise<SandboxStats> {
    const net = this.network?.counters(id) ?? { egressBytes: 0, ingressBytes: 0 };
    return { cpuUsageUs: await this.cgroups.cpuUsageMicros(id), memoryBytes: this.cgroups.memoryBytesSync(id), memoryPeakBytes: this.cgroups.memoryPeakBytes(id), ...net };
  }

  destroy(sandbox: ContainerSandbox): Promise<void> {
    const existing = this.destroyers.get(sandbox.id);
    if (existing) return existing;
    const p = this.teardown({ id: sandbox.id, dir: join(this.sbDir, sandbox.id), xdir: join(this.exposedDir, sandbox.id), spec: sandbox.spec, useNetwork: sandbox.ipAddress !== undefined, started: true }).finally(() => {
      this.sandboxes.delete(sandbox.id);
      this.destroyers.delete(sandbox.id);
    });
    this.destroyers.set(sandbox.id, p);
    return p;
  }

  /** Frees everything a (possibly half-created) sandbox holds. Idempotent. */
  private async teardown(s: CreatedState): Promise<void> {
    this.procViews.forget(s.id);
    if (s.started) {
      await this.spawner.run('crun', ['--root', this.crunRoot, 'delete', '--force', s.id], { timeoutMs: 30_000 }).catch(async (err: Error) => {
        if (!/does not exist|not found|No such file/i.test(err.message)) this.log.warn({ err, sandbox: s.id }, 'crun delete failed');
        // The cgroup removal below kills whatever still runs in the sandbox.
        await rm(join(this.crunRoot, s.id), { recursive: true, force: true });
      });
    }
    // Kills anything crun left running before the file systems go.
    await this.cgroups.remove(s.id);
    this.cpus?.release(s.id);
    if (existsSync(join(s.xdir, 'sys'))) await this.spawner.run(this.agentPath, ['unmount', join(s.xdir, 'sys')], { timeoutMs: 30_000 });
    await this.layers.remove(s.dir, join(s.xdir, 'rootfs'), s.id, s.spec.workspaceLayerDir);
    const left = [...(await mountsUnder(s.xdir)), ...(await mountsUnder(s.dir))];
    if (left.length > 0) throw new Error(`sandbox ${s.id}: cannot unmount ${left.join(', ')}`);
    const loop = this.loops.get(s.id);
    if (loop) {
      const image = join(s.dir, 'disk.img');
      if (!(await waitLoopReleased(loop, image))) {
        this.log.warn({ sandbox: s.id, loop }, 'loop device still attached after unmount; detaching it');
        await run('losetup', ['-d', loop]).catch(() => {});
      }
      this.loops.delete(s.id);
    }
    await rm(s.xdir, { recursive: true, force: true });
    await rm(s.dir, { recursive: true, force: true });
    // Only now: nothing of the sandbox holds the range any more (its layer is unmounted).
    const slot = this.slotOf.get(s.id);
    if (slot) this.slots?.release(slot);
    this.slotOf.delete(s.id);
    if (s.useNetwork && this.network) await this.network.destroy(s.id);
  }

  async shutdown(): Promise<void> {
    try {
      await this.shutdownSteps();
    } finally {
      // Whatever happened above (a step that threw), the image mounts of this instance (current
      // and older versions, the slots' idmapped ones) do not outlive it.
      await unmountUnder(join(this.runtimeDir, 'image')).catch((err: unknown) => this.log.error({ err }, 'could not unmount the sandbox images'));
    }
  }

  private async shutdownSteps(): Promise<void> {
    await Promise.allSettled([...this.pendingCreates]);
    const all = [...this.sandboxes.values()];
    // A few at a time: each teardown spawns crun and umount.
    for (let i = 0; i < all.length; i += 8) {
      await Promise.allSettled(all.slice(i, i + 8).map((s) => s.destroy()));
    }
    await Promise.allSettled([...this.destroyers.values()]);
    const slotMounts = this.slots ? await this.slots.mountPoints() : [];
    if (slotMounts.length) await this.spawner.run(this.agentPath, ['unmount', ...slotMounts], { timeoutMs: 30_000 }).catch((err: unknown) => this.log.error({ err }, 'could not unmount the sandbox uid slots'));
    this.slots = null;
    this.imageMount = null;
    this.olderImages.clear();
    await this.cgroups.removeParents();
    await this.lxcfs.stop().catch((err: unknown) => this.log.error({ err }, 'lxcfs stop failed'));
    await this.procViews.settled();
    if (this.network && this.initialized) await this.network.shutdown().catch((err: unknown) => this.log.error({ err }, 'network shutdown failed'));
    // After the network (it runs its commands through the spawner), before the tmpfs the spawner's
    // binary lives on is unmounted (lazily, if the spawner has not exited yet).
    this.fgSpawner.close();
    this.bgSpawner.close();
    await this.cgroups.removeMaintenance();
    const leftMounts = (await mountsUnder(this.exposedDir)).filter((mp) => mp !== this.exposedDir);
    if (leftMounts.length === 0) {
      await unmountUnder(this.exposedDir);
      await rm(this.exposedDir, { recursive: true, force: true });
    } else {
      this.log.warn({ mounts: leftMounts }, 'sandbox mounts left after shutdown; keeping /run/mags for the next start');
    }
    this.initialized = false;
  }
}

interface CreatedState {
  id: string;
  /** In the data dir: config, disk image, log. */
  dir: string;
  /** In /run/mags/<instance>: root mount point and /run/mags source. */
  xdir: string;
  spec: SandboxSpec;
  useNetwork: boolean;
  /** crun was asked to run it (so crun state may exist). */
  started: boolean;
}
