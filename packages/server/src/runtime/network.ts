/**
 * Sandbox networking: one bridge, one subnet and one set of nftables tables per daemon instance,
 * and a named netns + veth pair per sandbox. See docs/networking.md.
 */
import type { Logger } from 'pino';

export interface NetworkManagerOptions {
  /** Instance prefix (`instancePrefix(dataDir)`); every bridge, veth, netns and table name starts with it. */
  instance: string;
  /** The daemon's data dir; leases and resolv.conf files live under `<dataDir>/net`. */
  dataDir: string;
  log: Logger;
  /** Force the sandbox subnet (CIDR, /16../24); default: a /20 inside 10.200.0.0/13 derived from the instance. */
  subnet?: string;
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
  /** The bridge name, subnet (CIDR) and gateway address, known after `init`. */
  info(): { bridge: string; subnet: string; gateway: string; resolvers: string[] };
}

/** Creates the network manager of one daemon instance. */
export function createNetworkManager(opts: NetworkManagerOptions): NetworkManager {
  void opts;
  throw new Error('network manager: not implemented yet');
}
