import type { Readable } from 'node:stream';
import type { Sandbox } from '../runtime/driver.js';

/** Where the scheduler reads a job's uploaded files (UploadsService implements it). */
export interface JobFiles {
  /** The file's name and a stream of its bytes; throws when the user has no such file. */
  open(userId: string, id: string): Promise<{ name: string; size: number; data: Readable }>;
}

/**
 * Writes into `/root/$1` through a temporary file in /root: a symlink already at the name is
 * replaced, never followed; mode 0644, owned by root (the guest runs it as root).
 */
const WRITE_SCRIPT = 't=$(mktemp .mags-upload.XXXXXX) || exit 1; if cat > "$t" && chmod 0644 "$t" && mv -f -- "$t" "$1"; then exit 0; fi; rm -f -- "$t"; exit 1';

/**
 * Places each of the job's files at `/root/<name>` inside the sandbox through the guest agent: the
 * blob's bytes are streamed to `sh -c 'cat > ...'` on the process's stdin. Throws with a message
 * naming the file on the first failure.
 */
export async function placeJobFiles(sandbox: Sandbox, files: JobFiles, userId: string, ids: readonly string[], signal: AbortSignal): Promise<void> {
  if (ids.length === 0) return;
  if (!sandbox.spawn) throw new Error('this runtime driver cannot write files into a sandbox (it has no spawn)');
  for (const id of ids) {
    if (signal.aborted) throw new Error('cancelled');
    const file = await files.open(userId, id);
    await writeOne(sandbox, file.name, file.data, signal).catch((err: unknown) => {
      file.data.destroy();
      throw new Error(`could not place file ${file.name} (${id}) in /root: ${err instanceof Error ? err.message : String(err)}`);
    });
  }
}

async function writeOne(sandbox: Sandbox, name: string, data: Readable, signal: AbortSignal): Promise<void> {
  let stderr = '';
  const proc = sandbox.spawn!({ argv: ['/bin/sh', '-c', WRITE_SCRIPT, 'sh', name], cwd: '/root', stdin: true }, (stream, chunk) => {
    if (stream === 'stderr' && stderr.length < 2048) stderr += chunk.toString('utf8');
  });
  const onAbort = () => proc.kill(9, true);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    let sent: Error | undefined;
    try {
      for await (const chunk of data) {
        if (signal.aborted) throw new Error('cancelled');
        proc.write(chunk as Buffer);
      }
    } catch (err) {
      sent = err instanceof Error ? err : new Error(String(err));
      proc.kill(9, true);
    }
    proc.closeStdin();
    const exit = await proc.exited;
    if (sent) throw sent;
    if (exit.code !== 0) {
      const why = stderr.trim() || (exit.signal !== null ? `killed by signal ${exit.signal}` : `exit code ${exit.code ?? 'none'}`);
      throw new Error(why);
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
