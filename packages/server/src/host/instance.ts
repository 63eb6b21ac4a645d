import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

/**
 * The instance prefix of a daemon: every host resource it creates (cgroups, netns, veths, bridge,
 * nftables table, mounts, sandbox ids) starts with it, so daemons with different data dirs never
 * touch each other's resources and the start-up sweep removes only its own.
 */
export function instancePrefix(dataDir: string): string {
  return 'mg' + createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 6);
}
