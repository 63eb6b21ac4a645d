import { stat } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { isConnectionReset, isTerminalStatus, type LogEntry, type Mags, type RunOptions, type RunResult } from '@mags/sdk';
import { CliError, EXIT, usageError } from '../exit-codes.js';
import {
  action,
  client,
  intArg,
  note,
  out,
  printJson,
  withConnection,
  withExamples,
  withJson,
  writeLogLine,
  type ConnectionFlags,
} from '../shared.js';
import { startSpinner } from '../spinner.js';
import { scriptFromWords } from '../script.js';
import { isTruncationNotice } from '../job-view.js';
import { printRaw } from '../raw-output.js';

interface RunFlags extends ConnectionFlags {
  workspace?: string;
  n?: string;
  persistent?: boolean;
  url?: boolean;
  port: number;
  startupCommand?: string;
  base?: string;
  ephemeral?: boolean;
  disk?: number;
  sleep: boolean;
  timeout?: number;
  env?: Record<string, string>;
  name?: string;
  vcpus?: number;
  memory?: number;
  detach?: boolean;
  wait: boolean;
  verbose?: boolean;
  webhookUrl?: string;
  json?: boolean;
  file?: string[];
  stdin: boolean;
  tty?: boolean;
  interactive?: boolean;
}

/** Extra wait beyond `--timeout` before the CLI gives up on a job the server did not end. */
const TIMEOUT_GRACE_S = 60;

function collectFiles(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Files at least this big get a progress note on stderr. */
const PROGRESS_MIN_BYTES = 1024 * 1024;

/** Uploads the `-f` files in order and returns their ids; a line on stderr for each big one. */
async function uploadFiles(mags: Mags, paths: readonly string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const path of paths) {
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      throw usageError(`Cannot read ${path}: ${(err as Error).message}`, 'Check the path given to -f/--file.');
    }
    const big = size >= PROGRESS_MIN_BYTES;
    if (big) note(`Uploading ${path} (${(size / 1024 / 1024).toFixed(1)} MiB)…`);
    const started = Date.now();
    // No per-request time limit: a big file takes as long as the link needs (Ctrl-C stops it).
    const r = await mags.uploadFile(path, { timeoutMs: 0 });
    if (big) note(`Uploaded ${r.name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    ids.push(r.fileId);
  }
  return ids;
}

/** `KEY=VALUE` as `docker run -e` takes it. */
const ENV_ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=\S*$/;

function collectEnv(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('Use KEY=VALUE.');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export function runCommand(): Command {
  const cmd = new Command('run')
    .description("Run a script in a sandbox, print its output live and exit with the script's exit code")
    .argument('<script...>', 'the shell script as one argument (`-` reads it from stdin), or a command and its arguments after `--`')
    .option('-w, --workspace <id>', 'keep /root (and what the script installs) in this workspace across runs')
    .addOption(new Option('-n <id>', 'same as --workspace').hideHelp())
    .option('-p, --persistent', 'keep the sandbox up after the script (URL, SSH, exec); it sleeps when idle')
    .option('--url', 'enable a public URL for --port and print it (needs -p)')
    .option('--port <port>', 'sandbox port for --url', intArg(1), 8080)
    .option('--startup-command <cmd>', 'command to run when a sleeping persistent sandbox wakes')
    .option('--base <workspace>', 'use this workspace read-only as the base layer')
    .option('-e, --ephemeral', 'no workspace at all (fastest)')
    .option('--disk <GB>', 'workspace disk size in GB (default 2)', intArg(1))
    .option('--no-sleep', 'never sleep when idle (needs -p)')
    .option('--timeout <seconds>', 'end the script after this many seconds', intArg(1))
    .option('--env <KEY=VALUE>', 'environment variable for the script (repeatable)', collectEnv)
    .option('-f, --file <path>', 'upload this file first; the script finds it at /root/<name> (repeatable)', collectFiles)
    .option('--name <name>', 'job name, to refer to the job by name later')
    .option('--vcpus <n>', 'CPUs for the sandbox', intArg(1))
    .option('--memory <MB>', 'memory limit in MiB', intArg(1))
    .option('-d, --detach', 'submit, print the request id and return without waiting')
    .option('--no-wait', 'same as --detach')
    .option('-t, --tty', 'run the script on a terminal in the sandbox (with -i: an interactive session, e.g. mags run -it bash)')
    .option('-i, --interactive', 'pass stdin to the script even when it is a terminal (raw keystrokes with -t)')
    .option('--no-stdin', "don't pass this command's stdin to the script (by default a pipe or file on stdin is streamed to it)")
    .option('-v, --verbose', 'also print platform events (log stream "system") on stderr')
    .option('--webhook-url <url>', 'POST a signed event to this URL when the job ends (docs/webhooks.md)');
  withJson(withConnection(cmd));
  withExamples(cmd, [
    "mags run 'echo Hello World'",
    "mags run 'echo out; echo err >&2; exit 3'; echo \"exit code: $?\"",
    "mags run -- python3 -c 'print(1)'   # several words: run as this argv, each word kept whole",
    "mags run -w myproject 'pip install requests'",
    "mags run --env GREETING=hi 'echo $GREETING'",
    "mags run -f data.csv -f job.py 'python3 job.py data.csv'",
    "mags run -p --url --port 8080 'python3 -m http.server 8080'",
    "mags run --detach 'sleep 30'    # prints the request id",
    "mags run --json 'uname -a'",
    'mags run - < build.sh            # the script from stdin (a #! line picks its interpreter)',
    'echo hello | mags run cat        # stdin is streamed to the script',
    "mags run 'wc -c' < big.iso       # any size: streamed, never held in memory",
  ]);
  return cmd.action(action(async (words: string[], flags: RunFlags) => {
    if (flags.ephemeral && ENV_ASSIGNMENT.test(words[0]!)) {
      // `docker run -e KEY=VALUE` habit: here -e is --ephemeral and KEY=VALUE would become the command.
      throw usageError(`-e is --ephemeral in mags; "${words[0]}" would be run as a command`, `For an environment variable use --env: mags run --env ${words[0]} ...`);
    }
    const scriptFromStdin = words.length === 1 && words[0] === '-';
    const script = scriptFromStdin ? withShebang(await readStdin()) : scriptFromWords(words);
    if (!script.trim()) throw usageError('The script is empty');
    const workspaceId = flags.workspace ?? flags.n;
    const noSleep = flags.sleep === false;
    if (flags.ephemeral && (workspaceId || flags.base)) throw usageError('-e/--ephemeral cannot be combined with --workspace or --base');
    if (flags.url && !flags.persistent) throw usageError('--url needs -p/--persistent', "Try: mags run -p --url 'python3 -m http.server 8080'");
    if (noSleep && !flags.persistent) throw usageError('--no-sleep needs -p/--persistent');
    const mags = await client(flags);
    const fileIds = await uploadFiles(mags, flags.file ?? []);
    const runOpts: RunOptions = {
      name: flags.name,
      workspaceId,
      baseWorkspaceId: flags.base,
      persistent: flags.persistent,
      noSleep: noSleep || undefined,
      startupCommand: flags.startupCommand,
      environment: flags.env,
      diskGb: flags.disk,
      timeoutSeconds: flags.timeout,
      vcpus: flags.vcpus,
      memoryMb: flags.memory,
      fileIds: fileIds.length > 0 ? fileIds : undefined,
      webhookUrl: flags.webhookUrl,
    };
    if (flags.detach || flags.wait === false) {
      const submitted = await mags.run(script, runOpts);
      if (flags.json) printJson(submitted);
      else out(submitted.request_id);
      note(`Follow it with: mags logs -f ${submitted.request_id}`);
      return;
    }
    if (flags.persistent && flags.url) {
      await runWithUrl(mags, script, runOpts, flags);
      return;
    }
    // A pipe or file on stdin goes to the script (a terminal does not: nothing would end it).
    const forwardStdin = flags.stdin !== false && !scriptFromStdin && (flags.interactive === true || !process.stdin.isTTY);
    if (flags.interactive && scriptFromStdin) throw usageError('-i cannot be combined with `mags run -` (stdin holds the script)');
    if (flags.tty) {
      if (flags.json) throw usageError('-t cannot be combined with --json (a terminal has no separate streams)');
      const tty = { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 };
      return runAndStream(mags, script, { ...runOpts, tty, stdin: true }, flags, forwardStdin);
    }
    return runAndStream(mags, script, forwardStdin ? { ...runOpts, stdin: true } : runOpts, flags, forwardStdin);
  }));
}

/**
 * Streams this command's stdin to the job as the script reads it. Answers the failure, if any (the
 * caller notes it once the job's output is printed); never rejects. A job that ended before it read
 * its stdin is no failure.
 */
function uploadStdin(mags: Mags, id: string, forward: boolean): Promise<Error | undefined> {
  // A terminal job without -i still needs its (empty) input: the script then reads EOF at once.
  return mags.sendStdin(id, forward ? (process.stdin as AsyncIterable<Uint8Array>) : '', { timeoutMs: 0 }).then(
    () => undefined,
    async (err: unknown) => {
      const code = (err as { code?: string }).code;
      if (code === 'JOB_NOT_RUNNING' || process.stdin.destroyed) return undefined;
      const failure = err instanceof Error ? err : new Error(String(err));
      // The server closes an upload the script stopped reading when the script ends: the answer and the
      // write's EPIPE or reset race, so a dropped connection is no failure once the script has ended.
      if (isConnectionReset(failure) && (await scriptEnds(mags, id))) return undefined;
      return failure;
    },
  );
}

/**
 * Whether the job's script has ended or ends within a few seconds: the server closes a stdin upload
 * when the script ends while stdin is still coming, a moment before it stores the outcome.
 */
async function scriptEnds(mags: Mags, id: string): Promise<boolean> {
  for (let i = 0; i < 30; i++) {
    const job = await mags.status(id).catch(() => undefined);
    if (job && (isTerminalStatus(job.status) || job.status === 'sleeping' || job.script_duration_ms != null)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/**
 * A script read with `mags run -` that starts with `#!` runs by its interpreter: it is written to
 * a file in the sandbox and executed (bash would read it as a shell script).
 */
export function withShebang(script: string): string {
  if (!script.startsWith('#!')) return script;
  const b64 = Buffer.from(script, 'utf8').toString('base64');
  return `f=$(mktemp /tmp/mags-script.XXXXXX) && printf '%s' '${b64}' | base64 -d > "$f" && chmod 700 "$f" && exec "$f"`;
}

async function readStdin(): Promise<string> {
  let data = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) data += chunk as string;
  return data;
}

/** Submits, streams output to the matching streams and returns the script's exit code. */
async function runAndStream(mags: Mags, script: string, runOpts: RunOptions, flags: RunFlags, forwardStdin: boolean): Promise<number> {
  const spinner = startSpinner('Starting sandbox…');
  // -it on a terminal: keystrokes go to the sandbox's terminal as they are typed (Ctrl-C included).
  const raw = runOpts.tty !== undefined && forwardStdin && process.stdin.isTTY === true;
  let onResize: (() => void) | undefined;
  let truncated = false;
  const onOutput = (line: LogEntry): void => {
    spinner.stop();
    if (isTruncationNotice(line)) {
      // Announced whatever the flags: output was lost, which a script's exit code alone hides.
      truncated = true;
      note(`[mags] ${line.message}`);
      return;
    }
    if (!flags.json) writeLogLine(line, { system: flags.verbose === true });
  };
  // Ctrl-C stops waiting (not the job): the entry point reports it with exit code 130.
  const interrupt = new AbortController();
  let id: string | undefined;
  const onSigint = (): void => {
    interrupt.abort(
      new CliError(id ? `Interrupted; job ${id} keeps running on the server` : 'Interrupted', {
        exitCode: 130,
        hint: id ? `Follow it with \`mags logs -f ${id}\` or end it with \`mags stop ${id}\`.` : undefined,
      }),
    );
  };
  process.once('SIGINT', onSigint);
  let result: RunResult | undefined;
  let upload: Promise<Error | undefined> | undefined;
  try {
    const submitted = await mags.run(script, { ...runOpts, signal: interrupt.signal });
    id = submitted.request_id;
    if (runOpts.stdin) {
      if (raw) process.stdin.setRawMode(true);
      upload = uploadStdin(mags, id, forwardStdin);
    }
    if (runOpts.tty) {
      const jobId = id;
      onResize = () => void mags.resizeTty(jobId, process.stdout.columns || 80, process.stdout.rows || 24).catch(() => undefined);
      process.stdout.on('resize', onResize);
    }
    if (!flags.json) {
      // The bytes exactly as written (binary output, partial lines as they come); a Mags server has no raw form.
      const printed = await printRaw(mags, id, { follow: true, signal: interrupt.signal, system: flags.verbose === true, onFirst: () => spinner.stop() });
      if (printed) {
        truncated = printed.truncated;
        const job = await mags.status(id);
        if (!printed.end && !isTerminalStatus(job.status) && job.status !== 'sleeping') {
          throw new CliError(`The output stream of job ${id} closed before the job ended`, { hint: `Follow it with \`mags logs -f ${id}\`.` });
        }
        result = { requestId: id, status: job.status, exitCode: job.exit_code ?? null, endReason: job.end_reason ?? null, errorMessage: job.error_message ?? null, logs: [], job };
      }
    }
    result ??= await mags.waitFor(id, {
      onOutput,
      signal: interrupt.signal,
      timeoutMs: flags.timeout ? (flags.timeout + TIMEOUT_GRACE_S) * 1000 : undefined,
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
    spinner.stop();
    // The job ended (or the wait did): stop reading stdin, which may never end by itself.
    if (onResize) process.stdout.off('resize', onResize);
    if (raw) process.stdin.setRawMode(false);
    if (upload) {
      process.stdin.destroy();
      const failed = await upload;
      if (failed) note(`mags: stdin could not be passed to the job: ${failed.message}`);
    }
  }
  if (flags.json) {
    printJson({
      request_id: result.requestId,
      status: result.status,
      exit_code: result.exitCode,
      end_reason: result.endReason,
      error_message: result.errorMessage,
      logs: result.logs,
    });
  }
  if (result.status === 'running' || result.status === 'sleeping') {
    // A persistent job's sandbox outlives its script.
    note(`Sandbox ${result.requestId} stays up (${result.status}). Stop it with: mags stop ${result.requestId}`);
  }
  if (result.exitCode !== null && result.exitCode !== undefined) {
    // The script's own failure: its stderr already says why; add the server's reason only when the
    // script did not simply exit (e.g. the memory limit).
    if (result.status === 'error' && result.errorMessage && result.endReason !== 'exited' && !flags.json) {
      note(`mags: ${result.errorMessage}`);
    }
    if (result.exitCode === 0 && truncated) {
      note(`mags: the script succeeded but its output was truncated; exiting ${EXIT.OUTPUT_TRUNCATED}`);
      return EXIT.OUTPUT_TRUNCATED;
    }
    return result.exitCode;
  }
  if (result.status === 'error') {
    const timedOut = result.endReason === 'timeout';
    throw new CliError(`Job ${result.requestId} failed: ${result.errorMessage ?? 'no exit code'}`, {
      exitCode: timedOut ? EXIT.TIMEOUT : EXIT.GENERAL,
      hint: timedOut ? 'Allow more time with --timeout <seconds>.' : `See the job's log with: mags logs ${result.requestId}`,
    });
  }
  return EXIT.OK;
}

/** `-p --url`: waits until the sandbox runs, enables the URL, prints it and returns. */
async function runWithUrl(mags: Mags, script: string, runOpts: RunOptions, flags: RunFlags): Promise<void> {
  const spinner = startSpinner('Starting sandbox…');
  try {
    const submitted = await mags.run(script, runOpts);
    const id = submitted.request_id;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const job = await mags.status(id);
      if (job.status === 'running' || job.status === 'sleeping') break;
      if (job.status === 'completed' || job.status === 'error') {
        throw new CliError(`Job ${id} ended (${job.status}) before its URL could be enabled${job.error_message ? `: ${job.error_message}` : ''}`, {
          hint: `See its output with: mags logs ${id}`,
        });
      }
      if (Date.now() > deadline) throw new CliError(`Job ${id} did not start within 120 s`, { exitCode: EXIT.TIMEOUT });
      await new Promise((r) => setTimeout(r, 200));
    }
    let access;
    try {
      access = await mags.url(id, flags.port);
    } catch (err) {
      // Without its URL the sandbox is of no use to this command: do not leave it running.
      await mags.stop(id).catch(() => undefined);
      note(`Stopped ${id}: its URL could not be enabled.`);
      throw err;
    }
    spinner.stop();
    if (flags.json) printJson({ request_id: id, ...access });
    else out(access.url ?? '');
    note(`Sandbox ${id} is up. Output: mags logs -f ${id}   Stop: mags stop ${id}`);
  } finally {
    spinner.stop();
  }
}
