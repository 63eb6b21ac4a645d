/**
 * The sandbox interface. The scheduler and services only ever see these types; concrete drivers
 * (drivers/container/ on crun, later a microVM driver) implement them, are registered by name in
 * registry.ts (MAGS_RUNTIME picks one) and pass the shared conformance suite in
 * test/conformance/runtime.ts, whose capability flags select the tests of optional features.
 */

/** Resource limits of one sandbox. */
export interface SandboxLimits {
  /** CPU quota in whole or fractional cores. */
  vcpus: number;
  /** Memory limit in MiB; no swap beyond it. */
  memoryMb: number;
  /** Size of the writable layer in GB. */
  diskGb: number;
  /** Maximum number of processes/threads inside the sandbox. */
  pids: number;
}

/** What a sandbox is created with. */
export interface SandboxSpec {
  limits: SandboxLimits;
  /** Give the sandbox its own network with outbound NAT (default true). */
  network?: boolean;
  /**
   * Directory holding a persistent writable layer (the overlay upper) for a workspace; absent =
   * throw-away layer removed on destroy.
   */
  workspaceLayerDir?: string;
  /** Read-only lower layers stacked on the image (e.g. a base workspace), top first. */
  extraLowerDirs?: string[];
  /**
   * Base image version to run on (a workspace's own image) when the image directory still has it;
   * absent, or no longer there = the current image.
   */
  imageVersion?: string;
  /** Labels for logs and the sweep (job id, owner); never interpreted by the driver. */
  labels?: Record<string, string>;
}

export type OutputStream = 'stdout' | 'stderr';

/** One line (or a final partial line) of a script's output. */
export interface OutputLine {
  stream: OutputStream;
  /** The line without its trailing newline. */
  text: string;
  /** When the guest agent read it. */
  at: Date;
}

export interface ExecRequest {
  /** Run by `/bin/bash -c` (falls back to `/bin/sh -c`) in `cwd`, default `/root`. */
  script: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Wall-clock limit; on expiry the process group is killed and the result says `timeout`. */
  timeoutMs?: number;
  /** Cancel: kills the process group; the result says `cancelled`. */
  signal?: AbortSignal;
  /**
   * Raw output chunks as the guest agent reads them (byte-exact, no line splitting); when given,
   * `exec`'s `onOutput` is not called.
   */
  onData?: (stream: OutputStream, data: Buffer, at: Date) => void;
  /**
   * The script's stdin (otherwise /dev/null): pulled chunk by chunk as the process takes it (the
   * stdin window), EOF at its end. The driver stops pulling when the script ends.
   */
  stdin?: AsyncIterable<Buffer>;
  /**
   * Run the script on a pseudo-terminal of this size (stdout and stderr merge into it; stdin, when
   * given, is its input, so Ctrl-C reaches the foreground process as a keystroke). Optional: a
   * driver without terminals refuses it (the result says `sandbox_failed`).
   */
  pty?: { cols: number; rows: number };
  /** Called once the script runs, with the calls that steer it while it runs (a terminal's size). */
  onStarted?: (control: { resize(cols: number, rows: number): void }) => void;
}

export type ExecEndReason = 'exited' | 'signaled' | 'timeout' | 'cancelled' | 'oom' | 'sandbox_failed';

export interface ExecResult {
  /** The script's exit code; null when it did not exit normally. */
  exitCode: number | null;
  reason: ExecEndReason;
  /** Human message for anything but a normal exit, e.g. "ran out of memory (limit 1024 MiB)". */
  message?: string;
  /** Signal name when reason is `signaled`. */
  signal?: string;
  durationMs: number;
}

/** An interactive process (the SSH gateway's shells and commands). */
export interface SpawnRequest {
  argv: string[];
  env?: Record<string, string>;
  /** Default `/root`. */
  cwd?: string;
  /** Allocate a pseudo-terminal inside the sandbox (stdout and stderr merge into it). */
  pty?: { cols: number; rows: number };
  /** Give the process a stdin pipe (otherwise /dev/null); a pty always has input. */
  stdin?: boolean;
}

export interface ProcessExit {
  /** Exit code, or null when killed by a signal (or the sandbox went away: both null). */
  code: number | null;
  /** Signal number when killed by one. */
  signal: number | null;
}

/** A process started with `Sandbox.spawn`. */
export interface SandboxProcess {
  /** Resolves when the process ended and all its output was delivered. */
  readonly exited: Promise<ProcessExit>;
  /**
   * Queues stdin bytes; false once the bytes not yet taken by the process reach the stdin window
   * (then wait for `writable()` before writing more, so nothing queues unbounded).
   */
  write(data: Buffer | string): boolean;
  /** Resolves when more stdin may be written (at once when the window has room, or the process ended). */
  writable(): Promise<void>;
  closeStdin(): void;
  /** New terminal size (pty only). */
  resize(cols: number, rows: number): void;
  /** Signals the process group (or, with `all`, every process in the sandbox). */
  kill(signal: number, all?: boolean): void;
  /**
   * Output flow control: after `pause()` the driver delivers at most a bounded window more of the
   * process's output, then the process blocks writing until `resume()`. A consumer that pauses
   * must resume when it goes away (or the process's last output, and its exit, wait for it).
   * Optional: a driver without it delivers output as fast as the process writes.
   */
  pause?(): void;
  resume?(): void;
}

/** Resources a sandbox has used since it was created (counters only grow). */
export interface SandboxStats {
  /** CPU time of every process, in microseconds. */
  cpuUsageUs: number;
  /** Memory charged now, in bytes. */
  memoryBytes: number;
  /** Highest memory charged since creation, in bytes (the current value where the host does not track it). */
  memoryPeakBytes: number;
  /** Bytes the sandbox sent out of its network interface (0 without a network). */
  egressBytes: number;
  /** Bytes the sandbox received on its network interface. */
  ingressBytes: number;
}

/** A running sandbox whose guest agent accepts scripts. */
export interface Sandbox {
  readonly id: string;
  readonly spec: SandboxSpec;
  /** Address of the sandbox on the host bridge, when it has a network (the proxy uses it). */
  readonly ipAddress?: string;
  /**
   * Host uid/gid of root inside (its uid slot; ids 0..65535 inside are this + 0..65535), when the
   * sandbox runs in a user namespace. Files the host writes into the sandbox's layers must use it.
   */
  readonly hostIdBase?: number;
  /** Runs a script; resolves when it ends. `onOutput` is called for every line as it arrives. */
  exec(req: ExecRequest, onOutput: (line: OutputLine) => void): Promise<ExecResult>;
  /**
   * Starts an interactive process, optionally on a pty, with raw output chunks (no line splitting).
   * Optional: a driver without it cannot serve SSH sessions.
   */
  spawn?(req: SpawnRequest, onData: (stream: OutputStream, data: Buffer) => void): SandboxProcess;
  /** Freezes every process of the sandbox (memory kept, resumes in milliseconds). Optional. */
  pause?(): Promise<void>;
  /** Thaws a paused sandbox; exec() and spawn() on a paused sandbox resume it first. */
  resume?(): Promise<void>;
  /** Resource counters of the sandbox (usage metering, idle detection). Optional. */
  stats?(): Promise<SandboxStats>;
  /** Changes CPU, memory and pids limits of a running sandbox (used when a pooled sandbox is handed out). */
  updateLimits(limits: Partial<Omit<SandboxLimits, 'diskGb'>>): Promise<void>;
  /** Stops every process and frees every host resource of the sandbox. Idempotent. */
  destroy(): Promise<void>;
}

export interface RuntimeHealth {
  ok: boolean;
  /** What is missing on the host, in words a person can act on. */
  problems: string[];
}

export interface RuntimeDriver {
  readonly name: string;
  /**
   * Checks the host (packages, cgroups, image), builds what is missing and removes resources a
   * crashed daemon of the same instance left behind. Call once before `create`.
   */
  init(onProgress?: (message: string) => void): Promise<void>;
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Sandboxes this driver currently holds (for reconciliation after a restart). */
  list(): Sandbox[];
  health(): Promise<RuntimeHealth>;
  /** Destroys every sandbox of this instance. */
  shutdown(): Promise<void>;
}

/** Pool of pre-started sandboxes with default limits for jobs without a workspace. */
export interface PoolStatus {
  idle_vms: number;
  busy_vms: number;
  total_vms: number;
  min_pool_size: number;
  max_pool_size: number;
}

export interface SandboxPool {
  /** Starts filling to the minimum size in the background. */
  start(): void;
  /** A ready sandbox with these limits: from the pool when one fits, else created now (cold). */
  acquire(spec: SandboxSpec): Promise<{ sandbox: Sandbox; warm: boolean }>;
  /** Gives a sandbox back after its job; ephemeral ones are destroyed, never reused. */
  release(sandbox: Sandbox): Promise<void>;
  status(): PoolStatus;
  /** Stops refilling and destroys idle sandboxes. */
  stop(): Promise<void>;
}
