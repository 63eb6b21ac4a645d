import { Command } from 'commander';
import { jobExitCode } from '../job-view.js';
import { action, client, intArg, printJson, withConnection, withExamples, withJson, writeLogLine, type ConnectionFlags } from '../shared.js';

interface LogsFlags extends ConnectionFlags {
  follow?: boolean;
  after?: number;
  json?: boolean;
}

export function logsCommand(): Command {
  const cmd = new Command('logs')
    .description("Print a job's output (stdout lines to stdout, stderr lines to stderr)")
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .option('-f, --follow', "keep printing new lines until the job ends, then exit with the job's exit code")
    .option('--after <seq>', 'only lines after this sequence number', intArg(0));
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags logs 0b6f1c1e-...', 'mags logs -f myproject', 'mags logs --json 0b6f1c1e-...   # {"logs": [...]}', 'mags logs -f --json ID  # one JSON line per log line']);
  return cmd.action(action(async (id: string, flags: LogsFlags): Promise<number | void> => {
    const mags = await client(flags);
    if (!flags.follow) {
      const logs = await mags.logs(id, { after: flags.after });
      if (flags.json) return printJson(logs);
      for (const line of logs.logs) writeLogLine(line, { system: true });
      return;
    }
    for await (const line of mags.streamLogs(id, { after: flags.after })) {
      if (flags.json) process.stdout.write(JSON.stringify(line) + '\n');
      else writeLogLine(line, { system: true });
    }
    return jobExitCode(await mags.status(id));
  }));
}
