/**
 * The pure parts of the files API: Range parsing, path checks and the mapping of file-operation
 * errors to registry codes (no sandbox, no server).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '@mags/shared';
import { parseRange } from '../src/api/sandbox-files.js';
import { FsError, type FsErrorKind } from '../src/files/types.js';
import { AppError } from '../src/services/errors.js';
import { fsAppError, sandboxPath } from '../src/services/sandbox-files.js';

describe('files API: Range, paths, error codes', () => {
  it('parses one byte range; refuses several and malformed ones', () => {
    assert.equal(parseRange(undefined), undefined);
    assert.deepEqual(parseRange('bytes=0-9'), { offset: 0, length: 10 });
    assert.deepEqual(parseRange('bytes=100-'), { offset: 100 });
    assert.deepEqual(parseRange('bytes=-5'), { offset: -5 });
    assert.deepEqual(parseRange(' bytes=5000000000-5000000009 '), { offset: 5_000_000_000, length: 10 });
    for (const bad of ['bytes=1-2,4-5', 'bytes=-', 'bytes=9-1', 'items=0-1', 'bytes=a-b', '', 'bytes=99999999999999999999-', 'bytes=-0', 'bytes=-99999999999999999999', 'bytes=0-99999999999999999999']) {
      assert.throws(() => parseRange(bad), (err: unknown) => err instanceof AppError && err.code === 'VALIDATION_ERROR', bad);
    }
  });

  it('makes relative paths absolute under /root and refuses NUL, empty, over-long paths and names', () => {
    assert.equal(sandboxPath('path', 'app.py'), '/root/app.py');
    assert.equal(sandboxPath('path', '../../etc/shadow'), '/root/../../etc/shadow', 'resolved inside the sandbox, not here');
    assert.equal(sandboxPath('path', '/etc/hosts'), '/etc/hosts');
    assert.equal(sandboxPath('path', `/${'n'.repeat(255)}`).length, 256);
    const bad = [undefined, '', 'a\u0000b', `/${'n'.repeat(256)}`, `/${'d/'.repeat(2048)}x`, `/${'é'.repeat(128)}`];
    for (const p of bad) assert.throws(() => sandboxPath('path', p), (err: unknown) => err instanceof AppError && err.code === 'VALIDATION_ERROR', String(p).slice(0, 20));
  });

  it('maps every file-operation error to a registry code; ENOSPC names disk_gb', () => {
    const kinds: FsErrorKind[] = ['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'ENOSPC', 'EACCES', 'EPERM', 'EROFS', 'ELOOP', 'ENAMETOOLONG', 'EXDEV', 'EINVAL', 'EBUSY', 'EMFILE', 'ENOTREG', 'ESHORT', 'EIO'];
    const want: Partial<Record<FsErrorKind, string>> = { ENOENT: 'PATH_NOT_FOUND', EISDIR: 'IS_A_DIRECTORY', ENOTDIR: 'NOT_A_DIRECTORY', EEXIST: 'PATH_EXISTS', ENOTEMPTY: 'DIRECTORY_NOT_EMPTY', ENOTREG: 'NOT_A_REGULAR_FILE', ENOSPC: 'DISK_FULL', EROFS: 'FORBIDDEN', EIO: 'INTERNAL_ERROR' };
    for (const k of kinds) {
      const e = fsAppError(new FsError(k, 'x'), '/root/f', { diskGb: 3 });
      assert.ok(e instanceof AppError, k);
      assert.ok(e.code in ERROR_CODES);
      if (want[k]) assert.equal(e.code, want[k], k);
    }
    const full = fsAppError(new FsError('ENOSPC', 'x'), '/root/f', { diskGb: 3 }) as AppError;
    assert.equal(full.statusCode, 507);
    assert.match(full.message, /disk_gb 3 GB/);
    const other = new Error('not a file error');
    assert.equal(fsAppError(other, '/x'), other);
  });
});
