import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { client } from './helpers/http.js';
import { startPostgres } from './helpers/postgres.js';
import { spawnServer } from './helpers/spawn-server.js';

/** Job output with NUL bytes, from real sandboxes into PostgreSQL, read back through the API. */
describe('job output on PostgreSQL (real server, real sandboxes)', () => {
  it('a job whose output holds NUL bytes keeps every line, and a concurrent job keeps its lines', async () => {
    const pg = await startPostgres();
    try {
      const server = await spawnServer({ env: { MAGS_DATABASE_URL: pg.url } });
      try {
        const c = client(server.url, server.token);
        const nul = await c.submit({ script: "sleep 1; echo before; printf 'a\\000b\\n'; printf '\\000\\n'; printf 'x\\377y\\n'; echo after", type: 'inline' });
        // The other job writes a line every ~10 ms for seconds around the first one's output, so their lines
        // share write batches (one every 25 ms).
        const other = await c.submit({ script: 'for i in $(seq 1 300); do echo other-$i; sleep 0.01; done', type: 'inline' });
        assert.equal((await c.waitDone(nul)).status, 'completed');
        assert.equal((await c.waitDone(other)).status, 'completed');

        const read = async (id: string) => {
          const res = await c.req('GET', `/api/v1/mags-jobs/${id}/logs`);
          assert.equal(res.status, 200);
          return (res.body.logs as Array<{ message: string; stream: string }>).filter((l) => l.stream !== 'system').map((l) => l.message);
        };
        assert.deepEqual(await read(other), Array.from({ length: 300 }, (_, i) => `other-${i + 1}`));
        assert.deepEqual(await read(nul), ['before', 'a\0b', '\0', 'x\uFFFDy', 'after']);
        assert.doesNotMatch(server.stderr(), /could not be stored/);
      } finally {
        await server.stop();
      }
    } finally {
      await pg.stop();
    }
  });
});
