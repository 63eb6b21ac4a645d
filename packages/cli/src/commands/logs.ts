import { Command } from 'commander';
import type { LogEntry } from '@mags/sdk';
import { client, intArg, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

interface LogsFlags extends ConnectionFlags {
  follow?: boolean;
  after?: number;
  json?: boolean;
}

/** stdout lines go to stdout, stderr lines to stderr, platform events to stderr with a prefix. */
export function writeLine(line: LogEntry): void {
  const stream = line.stream ?? (line.level === 'error' ? 'stderr' : 'stdout');
  if (stream === 'stdout') process.stdout.write(line.message + '\n');
  else if (stream === 'stderr') process.stderr.write(line.message + '\n');
  else process.stderr.write(`[mags] ${line.message}\n`);
}

export function logsCommand(): Command {
  const cmd = new Command('logs')
    .description("Print a job's output (stdout lines to stdout, stderr lines to stderr)")
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .option('-f, --follow', 'keep printing new lines until the job ends')
    .option('--after <seq>', 'only lines after this sequence number', intArg(0));
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags logs 0b6f1c1e-...', 'mags logs -f myproject', 'mags logs --json 0b6f1c1e-...   # {"logs": [...]}', 'mags logs -f --json ID  # one JSON line per log line']);
  return cmd.action(async (id: string, flags: LogsFlags) => {
    const mags = await client(flags);
    if (!flags.follow) {
      const logs = await mags.logs(id, { after: flags.after });
      if (flags.json) return printJson(logs);
      logs.logs.forEach(writeLine);
      return;
    }
    for await (const line of mags.streamLogs(id, { after: flags.after })) {
      if (flags.json) process.stdout.write(JSON.stringify(line) + '\n');
      else writeLine(line);
    }
  });
}
