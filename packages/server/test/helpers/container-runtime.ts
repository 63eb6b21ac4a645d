/**
 * The container driver under test: a driver on its own temp data dir with real crun, and the checks
 * that none of its host resources (mounts, cgroups, netns, loop devices, crun state, processes)
 * outlive a sandbox or the driver. Needs root and the base image.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createContainerDriver } from '../../src/runtime/drivers/container/driver.js';
import { buildImage, findImage } from '../../src/runtime/image.js';
import { instancePrefix } from '../../src/host/instance.js';
import { mountsUnder } from '../../src/host/mounts.js';
import { testLog, type TestDriver } from '../conformance/runtime.js';

const exec = promisify(execFile);
export const IMAGE_DIR = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';

/** Builds the shared base image when missing (minutes the first time on a machine). */
export async function ensureImage(): Promise<void> {
  if (findImage(IMAGE_DIR)) return;
  await buildImage({ imageDir: IMAGE_DIR, onProgress: (m) => testLog.info(m), mirror: process.env.MAGS_DEBIAN_MIRROR });
}

/** A container driver under test; `instance` prefixes every host resource it makes. */
export interface ContainerTestDriver extends TestDriver {
  instance: string;
}

/** A container driver on its own temp data dir; `network: false` = loopback-only sandboxes. */
export async function containerTestDriver(opts: { network?: boolean } = {}): Promise<ContainerTestDriver> {
  await ensureImage();
  const dataDir = await mkdtemp(join(tmpdir(), 'mags-rt-'));
  const instance = instancePrefix(dataDir);
  const driver = createContainerDriver({
    dataDir,
    imageDir: IMAGE_DIR,
    instance,
    log: testLog,
    ...(opts.network === false ? { network: null } : {}),
  });
  return {
    driver,
    dataDir,
    instance,
    leftovers: (id) => sandboxLeftovers(dataDir, instance, id),
    async close() {
      try {
        await driver.shutdown();
        const left = await instanceLeftovers(dataDir, instance);
        assert.deepEqual(left, [], `the driver left host resources behind: ${left.join(', ')}`);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Host resources of one sandbox that still exist (empty = destroyed cleanly). */
export async function sandboxLeftovers(dataDir: string, instance: string, id: string): Promise<string[]> {
  const left: string[] = [];
  for (const mp of await mountsUnder(dataDir)) if (mp.includes(id)) left.push(`mount ${mp}`);
  for (const h of await readdir('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', h, instance, id);
    if (existsSync(dir)) left.push(`cgroup ${dir}`);
  }
  if (existsSync(join(dataDir, 'runtime', 'sb', id))) left.push(`directory ${join(dataDir, 'runtime', 'sb', id)}`);
  if (existsSync(join('/run/mags', instance, id))) left.push(`directory ${join('/run/mags', instance, id)}`);
  for (const mp of await mountsUnder(join('/run/mags', instance))) if (mp.includes(id)) left.push(`mount ${mp}`);
  for (const crun of [join('/run/mags', instance, 'crun'), join(dataDir, 'runtime', 'crun')]) if (existsSync(join(crun, id))) left.push(`crun state ${id}`);
  if (existsSync(join('/var/run/netns', `${instance}-${id}`))) left.push(`netns ${instance}-${id}`);
  const loops = (await exec('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE'])).stdout;
  for (const l of loops.split('\n')) if (l.includes(id)) left.push(`loop ${l.trim()}`);
  const ps = (await exec('ps', ['-eo', 'pid,args'])).stdout;
  for (const l of ps.split('\n')) if (l.includes(id)) left.push(`process ${l.trim()}`);
  return left;
}

/** Everything of an instance still on the host after shutdown. */
export async function instanceLeftovers(dataDir: string, instance: string): Promise<string[]> {
  const left: string[] = [];
  for (const mp of await mountsUnder(dataDir)) left.push(`mount ${mp}`);
  for (const mp of await mountsUnder(join('/run/mags', instance))) left.push(`mount ${mp}`);
  if (existsSync(join('/run/mags', instance))) left.push(`directory ${join('/run/mags', instance)}`);
  for (const h of await readdir('/sys/fs/cgroup')) {
    for (const dir of [join('/sys/fs/cgroup', h, instance), join('/sys/fs/cgroup', h, `${instance}.maint`)]) {
      if (existsSync(dir)) left.push(`cgroup ${dir}`);
    }
  }
  const loops = (await exec('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE'])).stdout;
  for (const l of loops.split('\n')) if (l.includes(dataDir)) left.push(`loop ${l.trim()}`);
  for (const crun of [join('/run/mags', instance, 'crun'), join(dataDir, 'runtime', 'crun')]) {
    for (const c of await readdir(crun).catch(() => [] as string[])) left.push(`crun state ${c}`);
  }
  for (const ns of await readdir('/var/run/netns').catch(() => [] as string[])) if (ns.startsWith(instance)) left.push(`netns ${ns}`);
  return left;
}
