/** The runtime registry: MAGS_RUNTIME names a driver; an unknown name is an error listing the known ones. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/logger.js';
import { createRuntimeDriver, DEFAULT_RUNTIME, isRuntimeName, RUNTIME_NAMES, UnknownRuntimeError } from '../src/runtime/registry.js';

const opts = { dataDir: '/nonexistent/mags-registry-test', imageDir: '/nonexistent/images', instance: 'magstest', log: silentLogger() };

describe('runtime registry', () => {
  it('knows the container driver, which is the default', () => {
    assert.deepEqual(RUNTIME_NAMES, ['container']);
    assert.equal(DEFAULT_RUNTIME, 'container');
    assert.ok(isRuntimeName('container'));
    assert.ok(!isRuntimeName('toString'), 'names are own entries, not inherited properties');
  });

  it('creates the driver a name selects, without touching the host before init', async () => {
    const driver = await createRuntimeDriver('container', opts);
    assert.equal(driver.name, 'container');
    assert.deepEqual(driver.list(), []);
  });

  it('an unknown name fails with the list of known drivers', async () => {
    await assert.rejects(createRuntimeDriver('firecracker', opts), (err: unknown) => {
      assert.ok(err instanceof UnknownRuntimeError);
      assert.equal(err.runtime, 'firecracker');
      assert.equal(err.message, 'unknown runtime driver "firecracker"; the known runtime drivers are: container (set MAGS_RUNTIME to one of them).');
      return true;
    });
  });
});
