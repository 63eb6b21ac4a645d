import { Command } from 'commander';
import { Writable } from 'node:stream';
import { requireRemote } from '../remote-path.js';
import { action, client, withConnection, withExamples, type ConnectionFlags } from '../shared.js';

export function catCommand(): Command {
  const cmd = new Command('cat')
    .description("Print a file of a persistent job's sandbox, byte for byte")
    .argument('<job:path>', 'job name or request id, a colon, a path (absolute or relative to /root); ws:<workspace>:<path> for a stored workspace');
  withConnection(cmd);
  withExamples(cmd, ['mags cat myjob:/etc/os-release', 'mags cat myjob:app/out.bin > out.bin', 'mags cat ws:myproject:/root/notes.txt']);
  return cmd.action(action(async (target: string, flags: ConnectionFlags) => {
    const { job, path, workspace } = requireRemote(target, 'cat');
    const mags = await client(flags);
    const body = workspace
      ? new Blob([await mags.files.readWorkspace(workspace, path, { timeoutMs: 120_000 })]).stream()
      : await mags.files.readStream(job, path, { timeoutMs: 120_000 });
    await body.pipeTo(Writable.toWeb(process.stdout) as WritableStream<Uint8Array>);
  }));
}
