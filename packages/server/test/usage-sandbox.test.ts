import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';

/**
 * Usage of real sandboxes: CPU time from the job's cgroup, bytes sent from the host end of its
 * veth, peak memory. The job sends UDP to its own gateway (the sandbox bridge; the firewall drops
 * it after the veth counted it), so no traffic leaves this machine.
 */
describe('usage metering of real sandboxes', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await spawnServer();
  });
  after(async () => {
    await server?.stop();
  });

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    const body = (await res.json()) as Record<string, any>;
    assert.ok(res.ok, JSON.stringify(body));
    return body;
  };

  it('records CPU seconds, egress bytes and peak memory of a job', async () => {
    const script = [
      // ~1 s of CPU, 64 MiB of memory touched, then 2 MB of UDP to the gateway.
      "python3 - <<'PY'",
      'import socket, time',
      // The default route's gateway from /proc/net/route (little-endian hex); the image has no `ip`.
      "gw = next(socket.inet_ntoa(bytes.fromhex(f[2])[::-1]) for f in (l.split() for l in open('/proc/net/route')) if f[1] == '00000000')",
      'block = bytearray(64 * 1024 * 1024)',
      'for i in range(0, len(block), 4096): block[i] = 1',
      't = time.process_time()',
      'while time.process_time() - t < 1.0: pass',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      'for _ in range(2000): s.sendto(b"x" * 1000, (gw, 9))',
      "print('done', gw)",
      'PY',
    ].join('\n');
    const { request_id: id } = await api('/api/v1/mags-jobs', { method: 'POST', body: JSON.stringify({ script, type: 'inline' }) });
    let status: Record<string, any> = {};
    for (let i = 0; i < 600; i++) {
      status = await api(`/api/v1/mags-jobs/${id}/status`);
      if (status.status !== 'pending' && status.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status.status, 'completed', JSON.stringify(status));
    const usage = await api('/api/v1/usage?group_by=job');
    const row = usage.rows.find((r: { key: string }) => r.key === id);
    assert.ok(row, JSON.stringify(usage));
    assert.ok(row.vcpu_seconds >= 0.9 && row.vcpu_seconds < 10, `vcpu_seconds ${row.vcpu_seconds}`);
    assert.ok(row.egress_bytes >= 2_000_000 && row.egress_bytes < 20_000_000, `egress ${row.egress_bytes}`);
    assert.ok(row.peak_memory_mb >= 64 && row.peak_memory_mb < 1024, `peak ${row.peak_memory_mb}`);
    assert.ok(row.wall_seconds >= 1, `wall ${row.wall_seconds}`);
  });
});
