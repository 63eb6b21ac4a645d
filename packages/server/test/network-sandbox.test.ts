// The sandbox network as a script sees it: real crun sandboxes (container driver, guest agent,
// seccomp, dropped capabilities) on the network manager. Traffic goes only to the bridge address,
// the host's own address, loopback and sandbox addresses.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { OutputLine, RuntimeDriver, Sandbox } from '../src/runtime/driver.js';
import { createContainerDriver } from '../src/runtime/drivers/container/driver.js';
import { instancePrefix } from '../src/host/instance.js';
import { createNetworkManager, type NetworkManager } from '../src/network/manager.js';

const exec = promisify(execFile);
const log = pino({ level: process.env.MAGS_TEST_LOG ?? 'warn' });
const isRoot = process.getuid?.() === 0;
const LIMITS = { vcpus: 1, memoryMb: 256, diskGb: 1, pids: 256 };

async function run(s: Sandbox, script: string, signal?: AbortSignal): Promise<{ out: string; exitCode: number | null }> {
  const lines: string[] = [];
  const r = await s.exec({ script, timeoutMs: 30_000, signal }, (l: OutputLine) => lines.push(l.text));
  return { out: lines.join('\n'), exitCode: r.exitCode };
}

/** A bash snippet printing "<label> open|blocked|refused" for a TCP connect from the sandbox. */
function connectLine(label: string, host: string, port: number): string {
  return `(timeout 2 bash -c 'exec 3<>/dev/tcp/${host}/${port}' 2>/dev/null; rc=$?;
    if [ $rc -eq 0 ]; then echo "${label} open"; elif [ $rc -eq 124 ]; then echo "${label} blocked"; else echo "${label} refused"; fi) &`;
}

describe('sandbox network seen from a real sandbox (root, crun)', { skip: isRoot ? false : 'needs root' }, () => {
  let dataDir: string;
  let net: NetworkManager;
  let driver: RuntimeDriver;
  const servers: Server[] = [];
  const stopListener = new AbortController();
  let listening: Promise<unknown> | undefined;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mags-net-sbx-'));
    const instance = instancePrefix(dataDir);
    net = createNetworkManager({ instance, dataDir, log });
    driver = createContainerDriver({
      dataDir,
      imageDir: process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images',
      instance,
      log,
      network: net,
    });
    await driver.init();
  });

  after(async () => {
    stopListener.abort();
    await listening?.catch(() => undefined);
    for (const s of servers) s.close();
    await driver?.shutdown().catch((err: unknown) => log.error({ err }, 'driver shutdown failed'));
    await net?.shutdown().catch((err: unknown) => log.error({ err }, 'network shutdown failed'));
    if (dataDir) {
      const instance = instancePrefix(dataDir);
      await rm(dataDir, { recursive: true, force: true });
      const tables = (await exec('nft', ['list', 'tables'])).stdout;
      assert.ok(!tables.includes(instance), tables);
      const links = (await exec('ip', ['-o', 'link', 'show'])).stdout;
      assert.ok(!links.includes(instance), links);
    }
  });

  it('reaches neither the host nor another sandbox; the host reaches the sandbox', async () => {
    const [a, b] = await Promise.all([
      driver.create({ limits: LIMITS, network: true }),
      driver.create({ limits: LIMITS, network: true }),
    ]);
    try {
      assert.ok(a.ipAddress && b.ipAddress && a.ipAddress !== b.ipAddress);
      const { gateway, resolvers } = net.info();

      // A web server in B, as a user's app would run one; the host (the proxy) must reach it.
      listening = run(b, 'exec python3 -m http.server 8080 --bind 0.0.0.0', stopListener.signal);
      let body = '';
      for (let i = 0; i < 50 && !body; i++) {
        body = await fetch(`http://${b.ipAddress}:8080/`).then(
          (r) => r.text(),
          () => '',
        );
        if (!body) await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(body, /Directory listing/);

      const host = createServer((s) => s.end('host'));
      servers.push(host);
      await new Promise<void>((resolve) => host.listen(0, '0.0.0.0', resolve));
      const hostPort = (host.address() as { port: number }).port;
      const routes = JSON.parse((await exec('ip', ['-j', '-4', 'route', 'show', 'default'])).stdout) as { prefsrc?: string; dev?: string }[];
      const dev = routes[0]?.dev;
      const main = dev
        ? (JSON.parse((await exec('ip', ['-j', '-4', 'addr', 'show', 'dev', dev])).stdout) as { addr_info: { local: string }[] }[])[0]
            ?.addr_info[0]?.local
        : undefined;

      const script = [
        connectLine('other-sandbox', b.ipAddress!, 8080),
        connectLine('host-bridge', gateway, hostPort),
        main ? connectLine('host-main', main, hostPort) : '',
        connectLine('loopback', '127.0.0.1', hostPort),
        'wait',
        'cat /etc/resolv.conf',
      ].join('\n');
      const { out } = await run(a, script);
      assert.match(out, /^other-sandbox blocked$/m);
      assert.match(out, /^host-bridge blocked$/m);
      if (main) assert.match(out, /^host-main blocked$/m);
      assert.match(out, /^loopback refused$/m, 'its 127.0.0.1 is its own');
      for (const r of resolvers) assert.match(out, new RegExp(`^nameserver ${r.replace(/\./g, '\\.')}$`, 'm'));
    } finally {
      stopListener.abort();
      await listening?.catch(() => undefined);
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });
});
