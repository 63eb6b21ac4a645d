// Pure parts of the sandbox network: subnet choice, resolver discovery, nftables script text.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chooseSubnet, formatCidr, ipToInt, overlaps, parseCidr } from '../src/network/ipv4.js';
import { FALLBACK_RESOLVERS, hostResolvers, renderResolvConf } from '../src/network/resolv.js';
import { rulesScript, slotNames } from '../src/network/rules.js';

describe('ipv4 helpers', () => {
  it('parses, normalises and compares prefixes', () => {
    assert.equal(formatCidr(parseCidr('10.200.17.9/20')), '10.200.16.0/20');
    assert.equal(formatCidr(parseCidr('192.0.2.1')), '192.0.2.1/32');
    assert.ok(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.203.0.0/20')));
    assert.ok(!overlaps(parseCidr('10.200.0.0/20'), parseCidr('10.200.16.0/20')));
    assert.throws(() => ipToInt('10.0.0.256'));
  });

  it('picks a stable /20 in 10.200.0.0/13 per instance and skips taken ranges', () => {
    const a = chooseSubnet('mgaaaaaa', [], []);
    assert.equal(a.prefix, 20);
    assert.ok(overlaps(parseCidr('10.200.0.0/13'), a));
    assert.deepEqual(chooseSubnet('mgaaaaaa', [], []), a, 'same instance, same subnet');
    const b = chooseSubnet('mgaaaaaa', [a], []);
    assert.notDeepEqual(b, a, 'a taken subnet is skipped');
    // A wide route over the whole pool start (e.g. a VPN's 10.200.0.0/14) pushes it further.
    const wide = parseCidr('10.200.0.0/14');
    assert.ok(!overlaps(chooseSubnet('mgaaaaaa', [wide], []), wide));
    // A resolver inside a candidate is avoided.
    assert.notDeepEqual(chooseSubnet('mgaaaaaa', [], [a.base + 53]), a);
    // The subnet used last time wins while it is free.
    const pref = parseCidr('10.207.240.0/20');
    assert.deepEqual(chooseSubnet('mgaaaaaa', [], [], pref), pref);
    assert.throws(() => chooseSubnet('mgaaaaaa', [parseCidr('10.0.0.0/8')], []), /no free/);
  });

  it('derives veth name, MAC and address of a slot', () => {
    const s = slotNames('mgabc123-v', parseCidr('10.201.16.0/20'), 0x123);
    assert.deepEqual(s, { veth: 'mgabc123-v123', mac: '02:00:0a:c9:11:23', ip: '10.201.17.35' });
    assert.ok(slotNames('mgabc123-v', parseCidr('10.201.16.0/20'), 4094).veth.length <= 15);
  });
});

describe('host resolvers', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  async function files(...texts: string[]): Promise<string[]> {
    const d = await mkdtemp(join(tmpdir(), 'mags-resolv-'));
    dirs.push(d);
    return Promise.all(
      texts.map(async (t, i) => {
        const f = join(d, `resolv${i}.conf`);
        await writeFile(f, t);
        return f;
      }),
    );
  }

  it('uses /etc/resolv.conf servers and keeps search/options', async () => {
    const [f] = await files('# comment\nnameserver 10.1.2.3\nnameserver fd00::53\nsearch corp.example\noptions edns0\n');
    const r = await hostResolvers([f!, '/nonexistent']);
    assert.deepEqual(r.nameservers, ['10.1.2.3']);
    const text = renderResolvConf(r);
    assert.match(text, /^nameserver 10\.1\.2\.3$/m);
    assert.match(text, /^search corp\.example$/m);
    assert.match(text, /^options edns0$/m);
    assert.doesNotMatch(text, /fd00/);
  });

  it('skips a loopback stub (systemd-resolved) for its upstream list', async () => {
    const [stub, upstream] = await files('nameserver 127.0.0.53\noptions edns0 trust-ad\n', 'nameserver 192.0.2.53\n');
    const r = await hostResolvers([stub!, upstream!]);
    assert.deepEqual(r.nameservers, ['192.0.2.53']);
    assert.equal(r.source, upstream);
  });

  it('falls back to the documented public resolvers only when nothing else is usable', async () => {
    const [stub] = await files('nameserver 127.0.0.53\n');
    const r = await hostResolvers([stub!, '/nonexistent']);
    assert.deepEqual(r.nameservers, FALLBACK_RESOLVERS);
    assert.equal(r.source, 'fallback');
  });
});

describe('nftables script', () => {
  it('only ever names this instance tables and carries every slot', () => {
    const subnet = parseCidr('10.204.0.0/20');
    const slots = [2, 3].map((s) => slotNames('mgtest01-v', subnet, s));
    const text = rulesScript({
      table: 'mgtest01',
      bridge: 'mgtest01-br',
      vethPrefix: 'mgtest01-v',
      subnet,
      slots,
      resolvers: ['10.255.255.53'],
      lan: ['192.0.2.0/24'],
    });
    const tableRefs = [...text.matchAll(/^\s*(?:delete )?table (\w+) (\w+)/gm)].map((m) => m[2]);
    assert.ok(tableRefs.length >= 4 && tableRefs.every((t) => t === 'mgtest01'), tableRefs.join());
    assert.doesNotMatch(text, /flush ruleset/);
    assert.match(text, /ip saddr 10\.204\.0\.0\/20 oifname != "mgtest01-br" masquerade/);
    assert.match(text, /"mgtest01-v2" \. 02:00:0a:cc:00:02/);
    assert.match(text, /"mgtest01-v3" \. 10\.204\.0\.3/);
    assert.match(text, /169\.254\.0\.0\/16/);
    assert.match(text, /192\.0\.2\.0\/24/);
    assert.match(text, /ct count over 4096/);
  });
});
