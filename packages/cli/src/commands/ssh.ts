import { spawn } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { constants, homedir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { CliError, EXIT } from '../exit-codes.js';
import { action, client, note, withConnection, withExamples, type ConnectionFlags } from '../shared.js';

/**
 * `mags ssh <name>`: finds the running or sleeping job (or starts one with workspace <name>), gets
 * an SSH key from the access endpoint, keeps it and the gateway's host key under ~/.mags/ and
 * runs the system `ssh` with them.
 */
export function sshCommand(): Command {
  const cmd = new Command('ssh')
    .description('Open a shell (or run a command) in a persistent sandbox over SSH; starts or wakes it first')
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .argument('[command...]', 'run this instead of a shell (like ssh host command)')
    .passThroughOptions();
  withConnection(cmd);
  withExamples(cmd, ['mags ssh dev', 'mags ssh dev uname -a']);
  return cmd.action(action(async (name: string, command: string[], flags: ConnectionFlags) => {
    const mags = await client(flags);
    let job = await mags.findJob(name);
    if (!job) {
      note(`Starting sandbox ${name}...`);
      const box = await mags.new(name, { persistent: true, timeout: 120_000 });
      job = await mags.status(box.requestId);
    }
    const access = await mags.enableAccess(job.request_id, 22);
    if (!access.ssh_private_key || !access.ssh_host || !access.ssh_port) {
      throw new CliError('The server did not answer an SSH key', { hint: 'The server needs its SSH gateway: MAGS_SSH_PORT (docs/ssh.md).' });
    }
    const dir = join(process.env.HOME || homedir(), '.mags');
    const keyDir = join(dir, 'ssh');
    await mkdir(keyDir, { recursive: true, mode: 0o700 });
    await chmod(keyDir, 0o700);
    const keyFile = join(keyDir, `${job.request_id}_ed25519`);
    await writeFile(keyFile, access.ssh_private_key, { mode: 0o600 });
    await chmod(keyFile, 0o600);
    const host = access.ssh_host;
    const port = access.ssh_port;
    const knownHosts = join(dir, 'known_hosts');
    const pinned = access.ssh_host_key ? `[${host}]:${port} ${access.ssh_host_key}` : undefined;
    if (pinned) await writeFile(join(keyDir, `${host}_${port}.known_hosts`), `${pinned}\n`, { mode: 0o600 });
    const args = [
      '-i', keyFile,
      '-p', String(port),
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${pinned ? join(keyDir, `${host}_${port}.known_hosts`) : knownHosts}`,
      '-o', `StrictHostKeyChecking=${pinned ? 'yes' : 'accept-new'}`,
      ...(command.length === 0 ? ['-t'] : []),
      `${access.ssh_user ?? 'root'}@${host}`,
      ...command,
    ];
    note(`Connecting to ${host}:${port}...`);
    return runSsh(args);
  }));
}

/** Runs the system ssh on this terminal; resolves with its exit code. */
function runSsh(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: 'inherit' });
    // The terminal's Ctrl-C goes to ssh (same process group); this process waits for it to end.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    child.on('error', (err: NodeJS.ErrnoException) => {
      process.off('SIGINT', ignore);
      if (err.code === 'ENOENT') reject(new CliError('ssh is not installed', { exitCode: EXIT.GENERAL, hint: 'Install an OpenSSH client (Debian: apt-get install openssh-client).' }));
      else reject(err);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 255));
    });
  });
}
