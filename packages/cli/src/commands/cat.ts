import { Command } from 'commander';
import { Writable } from 'node:stream';
import { requireRemote } from '../remote-path.js';
import { action, client, withConnection, withExamples, type ConnectionFlags } from '../shared.js';

export function catCommand(): Command {
  const cmd = new Command('cat')
    .description("Print a file of a persistent job's sandbox, byte for byte")
    .argument('<job:path>', 'job name or request id, a colon, a path (absolute or relative to /root)');
  withConnection(cmd);
  withExamples(cmd, ['mags cat myjob:/etc/os-release', 'mags cat myjob:app/out.bin > out.bin']);
  return cmd.action(action(async (target: string, flags: ConnectionFlags) => {
    const { job, path } = requireRemote(target, 'cat');
    const mags = await client(flags);
    const body = await mags.files.readStream(job, path, { timeoutMs: 120_000 });
    await body.pipeTo(Writable.toWeb(process.stdout) as WritableStream<Uint8Array>);
  }));
}
