/** The `mags` command tree: one module per command under ./commands. */
import { Command } from 'commander';
import { cliVersion } from './version.js';
import { loginCommand } from './commands/login.js';
import { logoutCommand } from './commands/logout.js';
import { whoamiCommand } from './commands/whoami.js';
import { runCommand } from './commands/run.js';
import { statusCommand } from './commands/status.js';
import { logsCommand } from './commands/logs.js';
import { listCommand } from './commands/list.js';
import { stopCommand } from './commands/stop.js';
import { rmCommand } from './commands/rm.js';
import { waitCommand } from './commands/wait.js';
import { syncCommand } from './commands/sync.js';
import { workspaceCommand } from './commands/workspace.js';
import { resizeCommand } from './commands/resize.js';
import { urlCommand } from './commands/url.js';
import { newCommand } from './commands/new.js';
import { sshCommand } from './commands/ssh.js';
import { execCommand } from './commands/exec.js';
import { setCommand } from './commands/set.js';
import { poolCommand } from './commands/pool.js';
import { tokenCommand } from './commands/token.js';
import { userCommand } from './commands/user.js';
import { serverCommand } from './commands/server.js';
import { setupClaudeCommand } from './commands/setup-claude.js';
import { usageCommand } from './commands/usage.js';
import { cronCommand } from './commands/cron.js';
import { webhookCommand } from './commands/webhook.js';
import { cpCommand } from './commands/cp.js';
import { lsCommand } from './commands/ls.js';
import { catCommand } from './commands/cat.js';
import { versionCommand } from './commands/version.js';

export function buildProgram(): Command {
  const program = new Command('mags')
    .description('Run scripts in instant Linux sandboxes on a (self-hosted) Mags server')
    .version(cliVersion(), '-V, --version', 'print the version (also -v, mags version)')
    .helpOption('-h, --help', 'show help')
    // `mags exec`/`mags ssh` pass options after the job name through to the command.
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ mags login                      # save a token in ~/.mags/config.json
  $ mags run 'echo Hello World'     # run a script in a fresh sandbox
  $ mags list                       # your jobs, newest first

Environment: MAGS_API_URL, MAGS_API_TOKEN (or MAGS_TOKEN). Exit codes: see docs/cli.md.`,
    );
  const commands = [
    loginCommand(),
    logoutCommand(),
    whoamiCommand(),
    runCommand(),
    newCommand(),
    sshCommand(),
    execCommand(),
    statusCommand(),
    logsCommand(),
    listCommand(),
    stopCommand(),
    rmCommand(),
    waitCommand(),
    syncCommand(),
    workspaceCommand(),
    resizeCommand(),
    urlCommand(),
    setCommand(),
    poolCommand(),
    usageCommand(),
    tokenCommand(),
    userCommand(),
    serverCommand(),
    setupClaudeCommand(),
    cronCommand(),
    webhookCommand(),
    cpCommand(),
    lsCommand(),
    catCommand(),
    versionCommand(),
  ];
  for (const cmd of commands) program.addCommand(cmd);
  // Subcommands inherit the error behaviour: throw instead of exiting.
  const inherit = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.showSuggestionAfterError(true);
    cmd.commands.forEach(inherit);
  };
  program.commands.forEach(inherit);
  return program;
}
