/** The OCI runtime config (config.json) of one sandbox, Docker-default-like. */
import type { SandboxLimits } from '../../driver.js';
import { seccompProfile } from './seccomp.js';

/** Docker's default capability set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
  // Loop and other virtual block devices name their host backing files (other sandboxes' disks, images).
  '/sys/devices/virtual/block',
];

/** RLIMIT_NOFILE (soft and hard) of every sandbox process; docs/security.md has the host-wide product. */
export const SANDBOX_NOFILE = 1024;
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Character devices a sandbox may use (the devices cgroup denies everything else). */
const ALLOWED_DEVICES: Array<{ type: string; major: number; minor?: number }> = [
  { type: 'c', major: 1, minor: 3 }, // null
  { type: 'c', major: 1, minor: 5 }, // zero
  { type: 'c', major: 1, minor: 7 }, // full
  { type: 'c', major: 1, minor: 8 }, // random
  { type: 'c', major: 1, minor: 9 }, // urandom
  { type: 'c', major: 5, minor: 0 }, // tty
  { type: 'c', major: 5, minor: 1 }, // console
  { type: 'c', major: 5, minor: 2 }, // ptmx
  { type: 'c', major: 136 }, // pts/*
];

export interface OciConfigInput {
  rootfs: string;
  hostname: string;
  /** Host directory bind-mounted at /run/mags (the agent's socket lives there). */
  runDir: string;
  /** Host path of the static agent binary, bind-mounted read-only at /run/mags/agent. */
  agentPath: string;
  cgroupsPath: string;
  limits: SandboxLimits;
  /** Path of a network namespace to join; absent = a fresh one with loopback only. */
  netnsPath?: string;
  /** Host resolv.conf to bind-mount read-only at /etc/resolv.conf. */
  resolvConfPath?: string;
  /** The daemon's own hard RLIMIT_NOFILE; sandboxes never get more (root may lack CAP_SYS_RESOURCE). */
  nofileHard: number;
  /**
   * Host path of a sysfs mounted from inside the sandbox's network namespace, bind-mounted at /sys
   * so /sys/class/net lists the sandbox's own interfaces. Absent: a fresh sysfs (crun mounts it in
   * the namespace it created).
   */
  sysfsPath?: string;
  /** Whether the memory+swap limit can be set (v1 hosts without swap accounting cannot). */
  swapLimit: boolean;
  annotations?: Record<string, string>;
  /**
   * The seccomp profile already compiled to BPF (base64), as crun stored it for an earlier sandbox:
   * crun then loads it as is instead of compiling the profile again (~30 ms per start).
   */
  seccompBpf?: string;
  /** Host CPUs the sandbox runs on (a cpuset list such as `0-1`); absent = all. */
  cpus?: string;
  /** Bind mounts added after the standard ones (the LXCFS /proc view). */
  extraMounts?: Array<Record<string, unknown>>;
  /** Run in a user namespace mapping ids 0..count-1 to host ids base..base+count-1. */
  idMap?: { base: number; count: number };
  /** A user namespace to join (pinned by the slot, already mapped as idMap says) instead of a fresh one. */
  userNamespacePath?: string;
}

export function ociConfig(i: OciConfigInput): Record<string, unknown> {
  const memory = i.limits.memoryMb * 1024 * 1024;
  const nofile = Math.min(SANDBOX_NOFILE, i.nofileHard);
  const mounts: Array<Record<string, unknown>> = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    i.sysfsPath
      ? { destination: '/sys', type: 'bind', source: i.sysfsPath, options: ['bind', 'ro', 'nosuid', 'noexec', 'nodev'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    // Read-only: connecting to the host socket needs no write access, and a writable host directory
    // would let the sandbox fill the host's disk past its own size limit.
    { destination: '/run/mags', type: 'bind', source: i.runDir, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
    { destination: '/run/mags/agent', type: 'bind', source: i.agentPath, options: ['bind', 'ro', 'nosuid', 'nodev'] },
  ];
  if (i.resolvConfPath) {
    mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: i.resolvConfPath, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] });
  }
  mounts.push(...(i.extraMounts ?? []));
  const namespaces: Array<Record<string, string>> = [
    { type: 'pid' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
    { type: 'cgroup' },
    i.netnsPath ? { type: 'network', path: i.netnsPath } : { type: 'network' },
  ];
  if (i.idMap) namespaces.push(i.userNamespacePath ? { type: 'user', path: i.userNamespacePath } : { type: 'user' });
  const idMappings = i.idMap ? [{ containerID: 0, hostID: i.idMap.base, size: i.idMap.count }] : undefined;
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/run/mags/agent'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
      cwd: '/',
      capabilities: {
        bounding: DEFAULT_CAPABILITIES,
        effective: DEFAULT_CAPABILITIES,
        permitted: DEFAULT_CAPABILITIES,
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
      noNewPrivileges: true,
    },
    root: { path: i.rootfs, readonly: false },
    hostname: i.hostname,
    mounts,
    annotations: i.seccompBpf ? { ...i.annotations, 'run.oci.seccomp_bpf_data': i.seccompBpf } : (i.annotations ?? {}),
    linux: {
      cgroupsPath: i.cgroupsPath,
      namespaces,
      ...(idMappings ? { uidMappings: idMappings, gidMappings: idMappings } : {}),
      resources: {
        devices: [{ allow: false, access: 'rwm' }, ...ALLOWED_DEVICES.map((d) => ({ allow: true, access: 'rwm', ...d }))],
        memory: i.swapLimit ? { limit: memory, swap: memory } : { limit: memory },
        cpu: { quota: Math.round(i.limits.vcpus * 100_000), period: 100_000, ...(i.cpus ? { cpus: i.cpus } : {}) },
        pids: { limit: i.limits.pids },
      },
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      ...(i.seccompBpf ? {} : { seccomp: seccompProfile() }),
      rootfsPropagation: 'private',
    },
  };
}
