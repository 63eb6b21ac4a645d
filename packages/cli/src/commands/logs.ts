import { Command, InvalidArgumentError } from 'commander';
import type { LogEntry } from '@mags/sdk';
import { jobExitCode } from '../job-view.js';
import { printRaw } from '../raw-output.js';
import { action, client, intArg, printJson, withConnection, withExamples, withJson, writeLogLine, type ConnectionFlags } from '../shared.js';
import { parseSince } from '../time.js';

interface LogsFlags extends ConnectionFlags {
  follow?: boolean;
  after?: number;
  json?: boolean;
  tail?: number;
  since?: Date;
  timestamps?: boolean;
}

function sinceArg(value: string): Date {
  const d = parseSince(value);
  if (!d) throw new InvalidArgumentError('Use a duration (30s, 10m, 1h, 2d) or a date (2026-11-29T10:00:00Z).');
  return d;
}

export function logsCommand(): Command {
  const cmd = new Command('logs')
    .description("Print a job's output (its stdout bytes to stdout, its stderr bytes to stderr)")
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .option('-f, --follow', "keep printing new output until the job ends, then exit with the job's exit code")
    .option('--after <seq>', 'only lines after this sequence number', intArg(0))
    .option('-n, --tail <n>', 'only the last n lines', intArg(0))
    .option('--since <when>', 'only lines written since then: a duration (30s, 10m, 1h) or a date', sinceArg)
    .option('-t, --timestamps', 'prefix each line with the time it was written (ISO 8601)');
  withJson(withConnection(cmd));
  withExamples(cmd, [
    'mags logs 0b6f1c1e-...',
    'mags logs -f myproject',
    'mags logs --tail 20 build',
    'mags logs --since 10m -t build',
    'mags logs --json 0b6f1c1e-...   # {"logs": [...]}',
    'mags logs -f --json ID  # one JSON line per log line',
  ]);
  return cmd.action(action(async (id: string, flags: LogsFlags): Promise<number | void> => {
    const mags = await client(flags);
    const lines = flags.json || flags.after !== undefined || flags.tail !== undefined || flags.since !== undefined || flags.timestamps;
    if (!lines) {
      // The bytes exactly as written; a Mags server has no raw form and gets the line path below.
      const printed = await printRaw(mags, id, { follow: flags.follow === true, system: true });
      if (printed) return flags.follow ? jobExitCode(await mags.status(id)) : undefined;
    }
    const since = flags.since?.getTime();
    const shown = (line: LogEntry) => since === undefined || Date.parse(line.timestamp) >= since;
    const print = (line: LogEntry) => {
      if (!shown(line)) return;
      if (flags.json && flags.follow) process.stdout.write(JSON.stringify(line) + '\n');
      else if (flags.timestamps) writeLogLine({ ...line, message: `${line.timestamp} ${line.message}` }, { system: true });
      else writeLogLine(line, { system: true });
    };
    let after = flags.after;
    if (!flags.follow || flags.tail !== undefined) {
      const logs = await mags.logs(id, { after: flags.after, tail: flags.tail });
      if (!flags.follow) {
        if (flags.json) return printJson(since === undefined ? logs : { ...logs, logs: logs.logs.filter(shown) });
        for (const line of logs.logs) print(line);
        return;
      }
      for (const line of logs.logs) print(line);
      after = logs.logs.at(-1)?.seq ?? after;
    }
    for await (const line of mags.streamLogs(id, { after })) print(line);
    return jobExitCode(await mags.status(id));
  }));
}
