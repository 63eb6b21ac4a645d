import { Command } from 'commander';
import { action, note, out, printJson, withExamples, withJson } from '../shared.js';

export function logoutCommand(): Command {
  const cmd = new Command('logout').description('Remove the saved API token from ~/.mags/config.json');
  withJson(cmd);
  withExamples(cmd, ['mags logout']);
  return cmd.action(action(async (flags: { json?: boolean }) => {
    const sdk = await import('@mags/sdk');
    const path = sdk.configPath();
    const removed = sdk.removeSavedToken(path);
    if (flags.json) printJson({ logged_out: removed, config_path: path });
    else out(removed ? `Logged out: removed the token from ${path}.` : `No saved token in ${path}; nothing to do.`);
    if (process.env.MAGS_API_TOKEN || process.env.MAGS_TOKEN) {
      note('Note: MAGS_API_TOKEN/MAGS_TOKEN is still set in this shell; unset it to log out completely.');
    }
  }));
}
