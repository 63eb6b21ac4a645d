import { Command } from 'commander';
import { out, printJson, withExamples, withJson } from '../shared.js';

/** The agent skill: how an AI coding agent should use mags. */
export const SKILL_MD = `---
name: mags
description: Run shell scripts and experiments in isolated Linux sandboxes with the mags CLI (a self-hosted Mags server). Use it to execute untrusted or heavy code and to install packages without touching this machine.
---

# Using mags

\`mags\` runs a shell script in a fresh, isolated Linux sandbox (Debian, user root, home /root,
bash, curl, wget, git, python3, pip, node, npm, apt) and prints its output. Use it instead of
running untrusted or system-changing commands on this machine.

## Check the setup
- \`mags whoami\` must print a user. If it says "API token required", ask the user to run
  \`mags login\` (or set MAGS_API_TOKEN and MAGS_API_URL).

## Run a script
- \`mags run 'echo Hello World'\` - prints the script's stdout on stdout and its stderr on stderr,
  and exits with the script's exit code. Quote the whole script as one argument.
- Multi-line: \`mags run "$(cat script.sh)"\`, or \`mags run 'set -e; cd /root; ...'\`.
- Environment: \`mags run --env KEY=VALUE 'echo $KEY'\` (repeatable).
- Limits: \`--timeout <seconds>\`, \`--memory <MiB>\`, \`--vcpus <n>\`, \`--disk <GB>\`.
- Machine-readable: \`mags run --json '...'\` prints {request_id, status, exit_code, logs}.
- Long jobs: \`mags run --detach '...'\` prints the request id; then \`mags logs -f <id>\`,
  \`mags status <id>\`, \`mags stop <id>\`.
- Without a workspace every run starts from a clean sandbox: nothing a script writes or installs
  is kept for the next run.

## Keep state in a workspace
- \`mags run -w myproject 'apt-get update -qq && apt-get install -y jq'\`, then
  \`mags run -w myproject 'jq --version'\`: a workspace keeps /root and everything a script
  installs (apt, pip, npm -g) for the next run with the same \`-w\` name. One run at a time per
  workspace (a second one is refused with "already in use").
- \`mags workspace list\`, \`mags workspace delete <name>\`, \`mags sync <name>\`,
  \`mags workspace history <name>\`, \`mags workspace restore <name> --to <version>\`,
  \`mags resize <name> --disk <GB>\`.
- \`--base <workspace>\` runs on another workspace read-only (with \`-w\` the changes go to the new one).

## Files
- \`mags run -f data.csv 'wc -l /root/data.csv'\`: \`-f\` (repeatable) uploads a local file into /root
  before the script starts.

- \`mags cp data.csv mybox:/root/data.csv\`, \`mags cp mybox:/root/out.txt .\`, \`mags cat mybox:/root/out.txt\`,
  \`mags ls mybox:/root\`: files of a persistent sandbox (byte for byte; a sleeping one is read without waking it).

## Persistent sandboxes, exec and URLs
- \`mags new mybox\` starts a persistent sandbox named mybox and waits until it runs; it stays up,
  freezes when idle and sleeps later (its /root is kept as workspace mybox); any use wakes it.
- \`mags exec mybox 'cd /root && make test'\` runs a command in it, streams the output and exits with
  the command's code. \`mags ssh mybox\` opens a shell (when the server runs its SSH gateway).
- \`mags run -w webapp -p --url 'python3 -m http.server 8080'\` serves an app on a public URL;
  \`mags url webapp\` prints it again, \`mags stop webapp\` ends the sandbox.
- \`mags set mybox --no-sleep\` keeps it awake; \`mags set mybox --sleep\` lets it sleep again.

## Schedules
- \`mags cron add nightly '0 3 * * *' 'cd /root && ./backup.sh' -w myproject\` runs a job on a
  schedule (UTC unless \`--tz\`); \`mags cron list\`, \`mags cron remove nightly\`.

## Inspect
- \`mags list\` (newest first, \`--json\` for scripts), \`mags status <id>\`, \`mags logs <id>\`.

## Exit codes
0 ok (or the script's own code for \`mags run\`), 1 error, 2 bad usage, 3 no/invalid token,
4 unknown job, 5 server unreachable, 6 the script succeeded but its output was truncated
(the server's output cap), 124 timed out.
`;

export function setupClaudeCommand(): Command {
  const cmd = new Command('setup-claude')
    .description('Install a skill that teaches Claude Code (or another agent) to use mags: ~/.claude/skills/mags/SKILL.md')
    .option('--print', 'print the skill instead of writing it');
  withJson(cmd);
  withExamples(cmd, ['mags setup-claude', 'mags setup-claude --print']);
  return cmd.action(async (flags: { print?: boolean; json?: boolean }) => {
    if (flags.print) {
      process.stdout.write(SKILL_MD);
      return;
    }
    const [{ mkdirSync, writeFileSync }, { homedir }, { join }] = await Promise.all([
      import('node:fs'),
      import('node:os'),
      import('node:path'),
    ]);
    const dir = join(process.env.HOME || homedir(), '.claude', 'skills', 'mags');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'SKILL.md');
    writeFileSync(path, SKILL_MD);
    if (flags.json) printJson({ path });
    else out(`Wrote ${path}`);
  });
}
