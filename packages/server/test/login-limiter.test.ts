import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoginLimiter } from '../src/services/login-limiter.js';
import { DUMMY_HASH, hashPassword, verifyPassword } from '../src/services/passwords.js';

describe('passwords', () => {
  it('scrypt hashes with a per-user salt and verifies only the right password', async () => {
    const a = await hashPassword('same password');
    const b = await hashPassword('same password');
    assert.notEqual(a, b, 'each hash has its own salt');
    assert.match(a, /^scrypt\$32768\$8\$1\$/);
    assert.equal(await verifyPassword('same password', a), true);
    assert.equal(await verifyPassword('same passwore', a), false);
    assert.equal(await verifyPassword('', DUMMY_HASH), false);
    assert.equal(await verifyPassword('x', 'not-a-hash'), false);
    assert.equal(await verifyPassword('x', 'scrypt$abc$8$1$AAAA$AAAA'), false);
  });
});

describe('LoginLimiter', () => {
  it('refuses an account after its failures until the window ends; a success clears the count', () => {
    let now = 0;
    const l = new LoginLimiter({ perAccount: 3, perAddress: 100, windowMs: 60_000 }, () => now);
    for (let i = 0; i < 2; i++) l.recordFailure('Alice', `10.0.0.${i}`);
    assert.equal(l.retryAfterSeconds('alice', '10.1.1.1'), 0);
    l.recordSuccess('alice');
    for (let i = 0; i < 3; i++) l.recordFailure('alice', `10.0.0.${i}`);
    assert.equal(l.retryAfterSeconds('ALICE', '10.9.9.9'), 60);
    now = 30_000;
    assert.equal(l.retryAfterSeconds('alice', '10.9.9.9'), 30);
    now = 60_001;
    assert.equal(l.retryAfterSeconds('alice', '10.9.9.9'), 0);
  });

  it('refuses an address after its failures, whatever account it tries', () => {
    const l = new LoginLimiter({ perAccount: 100, perAddress: 2, windowMs: 1000 }, () => 0);
    l.recordFailure('a', '1.2.3.4');
    l.recordFailure('b', '1.2.3.4');
    assert.ok(l.retryAfterSeconds('c', '1.2.3.4') > 0);
    assert.equal(l.retryAfterSeconds('c', '1.2.3.5'), 0);
  });
});
