import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/** Where Debian's postgresql-15 package puts initdb and pg_ctl. */
export const PG_BIN = process.env.MAGS_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * Skip reason for PostgreSQL parts of files that otherwise belong to the unit tier
 * (scripts/test-tier.mjs sets MAGS_TEST_TIER=unit; the integration tier runs those parts).
 */
export const POSTGRES_SKIP: string | false = process.env.MAGS_TEST_TIER === 'unit' ? 'the unit tier runs without PostgreSQL; npm run test:integration runs this' : false;

/** A throwaway PostgreSQL cluster on a temp dir and a free loopback port. */
export interface TestPostgres {
  /** `postgres://mags@127.0.0.1:<port>/postgres` (trust auth, loopback only). */
  url: string;
  port: number;
  dir: string;
  /** Stops the cluster (immediate) and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts a PostgreSQL 15 cluster: initdb + pg_ctl in a temp dir. PostgreSQL refuses to run as root,
 * so as root the cluster belongs to the `postgres` system user and its tools run through `runuser`.
 */
export async function startPostgres(): Promise<TestPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'mags-pg-'));
  const data = join(dir, 'data');
  const isRoot = process.getuid?.() === 0;
  let uid = -1;
  let gid = -1;
  if (isRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    uid = Number(stdout.trim());
    gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
    await chmod(dir, 0o700);
  }
  const as = (cmd: string, args: string[]) =>
    isRoot ? run('runuser', ['-u', 'postgres', '--', join(PG_BIN, cmd), ...args], { cwd: dir }) : run(join(PG_BIN, cmd), args, { cwd: dir });
  const port = await freePort();
  let started = false;
  const stop = async () => {
    if (started) {
      await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      started = false;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await as('initdb', ['-D', data, '-U', 'mags', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off`;
    await as('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    started = true;
  } catch (err) {
    await stop();
    throw new Error(`could not start a test PostgreSQL from ${PG_BIN} (install postgresql-15): ${String(err)}`);
  }
  return { url: `postgres://mags@127.0.0.1:${port}/postgres`, port, dir, stop };
}
