import { Command } from 'commander';
import { jobExitCode } from '../job-view.js';
import { printRaw } from '../raw-output.js';
import { action, client, intArg, printJson, withConnection, withExamples, withJson, writeLogLine, type ConnectionFlags } from '../shared.js';

interface LogsFlags extends ConnectionFlags {
  follow?: boolean;
  after?: number;
  json?: boolean;
}

export function logsCommand(): Command {
  const cmd = new Command('logs')
    .description("Print a job's output (its stdout bytes to stdout, its stderr bytes to stderr)")
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .option('-f, --follow', "keep printing new lines until the job ends, then exit with the job's exit code")
    .option('--after <seq>', 'only lines after this sequence number', intArg(0));
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags logs 0b6f1c1e-...', 'mags logs -f myproject', 'mags logs --json 0b6f1c1e-...   # {"logs": [...]}', 'mags logs -f --json ID  # one JSON line per log line']);
  return cmd.action(action(async (id: string, flags: LogsFlags): Promise<number | void> => {
    const mags = await client(flags);
    if (!flags.json && flags.after === undefined) {
      // The bytes exactly as written; a Mags server has no raw form and gets the line path below.
      const printed = await printRaw(mags, id, { follow: flags.follow === true, system: true });
      if (printed) return flags.follow ? jobExitCode(await mags.status(id)) : undefined;
    }
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
