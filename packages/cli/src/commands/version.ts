import { Command } from 'commander';
import { cliVersion } from '../version.js';
import { action, out, printJson, withJson } from '../shared.js';

export function versionCommand(): Command {
  const cmd = new Command('version').description('Print the version of mags (same as mags -v / --version)');
  withJson(cmd);
  return cmd.action(action(async (flags: { json?: boolean }) => {
    if (flags.json) return printJson({ version: cliVersion() });
    out(cliVersion());
  }));
}
