import { spawn } from 'node:child_process';
import { Command } from 'commander';
import { usageError } from '../exit-codes.js';
import { action, note, out, printJson, withExamples, withJson } from '../shared.js';

interface LoginFlags {
  token?: string;
  url?: string;
  apiUrl?: string;
  json?: boolean;
}

export function loginCommand(): Command {
  const cmd = new Command('login')
    .description('Save an API token (and the server URL) in ~/.mags/config.json after checking it')
    .option('--token <token>', 'the token (default: prompt for it, or read it from stdin)')
    .option('--url <url>', 'server URL (default: MAGS_API_URL, the saved URL, then http://127.0.0.1:8090)')
    .option('--api-url <url>', 'same as --url');
  withJson(cmd);
  withExamples(cmd, [
    'mags login',
    'mags login --url http://127.0.0.1:8090 --token mags_XXXXXXXX',
    'sudo cat /var/lib/mags/admin-token | mags login --url http://127.0.0.1:8090',
  ]);
  return cmd.action(action(async (flags: LoginFlags) => {
    const sdk = await import('@mags/sdk');
    const apiUrl = sdk.resolveSettings({ apiUrl: flags.url ?? flags.apiUrl }).apiUrl;
    let token = flags.token?.trim();
    if (!token) {
      const tokenPage = `${apiUrl.replace(/\/+$/, '')}/tokens`;
      note(`Log in to the Mags server at ${apiUrl}.`);
      note(`Create a token in the dashboard: ${tokenPage}`);
      note('(or on the server host: $MAGS_DATA_DIR/admin-token, default /var/lib/mags/admin-token; or `mags token create <name>`).');
      if (process.stdin.isTTY) openInBrowser(tokenPage);
      token = await readToken();
    }
    if (!token) throw usageError('No token given', 'Paste a token at the prompt, pipe it on stdin or pass --token.');
    const mags = new sdk.Mags({ apiToken: token, apiUrl });
    let me;
    try {
      me = await mags.whoami();
    } catch (err) {
      if (err instanceof sdk.AuthenticationError) {
        throw new sdk.AuthenticationError(`The server at ${apiUrl} refused this token: ${err.message}`, {
          code: err.code,
          status: err.status,
          hint: sdk.AUTH_HINT,
        });
      }
      throw err;
    }
    const path = sdk.configPath();
    sdk.writeConfigFile({ api_url: apiUrl, api_token: token }, path);
    if (flags.json) printJson({ api_url: apiUrl, config_path: path, user: me });
    else out(`Logged in to ${apiUrl} as ${me.name}. Saved to ${path}.`);
    if (process.env.MAGS_API_TOKEN || process.env.MAGS_TOKEN) {
      note('Note: MAGS_API_TOKEN/MAGS_TOKEN is set in this shell and takes precedence over the saved token.');
    }
  }));
}

/** Opens `url` with the desktop's opener (xdg-open, open); says so when there is none. */
function openInBrowser(url: string): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(opener, [url], { detached: true, stdio: 'ignore' });
  child.on('error', (err) => note(`Could not open a browser (${opener}: ${err.message}); open the URL above yourself.`));
  child.unref();
}

/** Reads the token: a hidden prompt on a terminal, else the first non-empty line of stdin. */
async function readToken(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let data = '';
    stdin.setEncoding('utf8');
    for await (const chunk of stdin) data += chunk as string;
    return data.split(/\r?\n/).map((l) => l.trim()).find((l) => l) ?? '';
  }
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: stdin, output: process.stderr, terminal: true });
  const muted = rl as unknown as { _writeToOutput: (s: string) => void };
  let prompting = true;
  const write = muted._writeToOutput.bind(rl);
  muted._writeToOutput = (s: string) => {
    if (!prompting || s.includes('Paste')) write(s);
  };
  try {
    return await new Promise<string>((resolve) => {
      rl.question('Paste your API token: ', (answer) => {
        prompting = false;
        process.stderr.write('\n');
        resolve(answer.trim());
      });
    });
  } finally {
    rl.close();
  }
}
