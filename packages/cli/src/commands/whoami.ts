import { Command } from 'commander';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

export function whoamiCommand(): Command {
  const cmd = new Command('whoami').description('Show the user the API token belongs to, and the server');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags whoami', 'mags whoami --json']);
  return cmd.action(action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const me = await mags.whoami();
    const sdk = await import('@mags/sdk');
    const settings = sdk.resolveSettings({ apiToken: flags.token, apiUrl: flags.apiUrl });
    if (flags.json) {
      printJson({ ...me, api_url: mags.apiUrl, token_source: settings.tokenSource });
      return;
    }
    out(`${me.name}${me.admin ? ' (admin)' : ''} at ${mags.apiUrl}`);
    out(`user id: ${me.id}   token from: ${settings.tokenSource === 'config' ? settings.configPath : settings.tokenSource}`);
  }));
}
