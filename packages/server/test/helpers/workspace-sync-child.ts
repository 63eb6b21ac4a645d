/**
 * Child process of the SIGKILL test: syncs a layer with a blob store that prints "put" after each
 * blob upload and stalls forever on the fifth, so the parent can kill it between blob uploads and
 * the manifest write. argv: blob root, cache dir, layer dir.
 */
import { silentLogger } from '../../src/logger.js';
import { FsBlobStore } from '../../src/storage/blobs/index.js';
import { WorkspaceSync } from '../../src/workspaces/sync/index.js';

const [root, cacheDir, layer] = process.argv.slice(2) as [string, string, string];
const inner = await FsBlobStore.open({ root });
let puts = 0;
const store = Object.create(inner) as FsBlobStore;
store.put = async (key, data, opts) => {
  await inner.put(key, data, opts);
  process.stdout.write('put\n');
  if (++puts >= 5) await new Promise(() => setInterval(() => undefined, 1000));
};
await new WorkspaceSync({ blobs: store, log: silentLogger(), cacheDir }).sync('ws', layer);
