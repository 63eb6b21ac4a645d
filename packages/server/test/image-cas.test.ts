/**
 * Sandboxes trust the certificate authorities the host's administrator added: the image build copies
 * /usr/local/share/ca-certificates/*.crt into the image and refreshes the CA bundle there.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HOST_LOCAL_CA_DIR } from '../src/runtime/image.js';
import { containerTestDriver, run, SMALL, type TestDriver } from './runtime-conformance.test.js';

/** The base64 body of a PEM certificate on one line, as it can be searched for in a bundle. */
function pemBody(pem: string): string {
  return pem
    .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
    .replace(/\s+/g, '')
    .slice(0, 200);
}

const hostCas = (() => {
  try {
    return readdirSync(HOST_LOCAL_CA_DIR).filter((n) => n.endsWith('.crt'));
  } catch {
    return [];
  }
})();

describe('host certificate authorities in sandboxes', { skip: hostCas.length === 0 && 'this host has no local CAs' }, () => {
  let t: TestDriver;
  before(async () => {
    t = await containerTestDriver({ network: false });
    await t.driver.init();
  });
  after(async () => {
    await t?.close();
  });

  it('every local CA of the host is in the sandbox CA bundle', async () => {
    const sb = await t.driver.create({ limits: SMALL, network: false });
    try {
      for (const name of hostCas) {
        const body = pemBody(readFileSync(join(HOST_LOCAL_CA_DIR, name), 'utf8'));
        const r = await run(sb, `tr -d '\\n ' < /etc/ssl/certs/ca-certificates.crt | grep -c -F '${body}'`);
        assert.deepEqual(r.stdout, ['1'], `${name} is missing from the sandbox's /etc/ssl/certs/ca-certificates.crt`);
      }
      const ls = await run(sb, 'ls /usr/local/share/ca-certificates');
      for (const name of hostCas) assert.ok(ls.stdout.includes(name), `${name} is not in the image`);
    } finally {
      await sb.destroy();
    }
  });
});
