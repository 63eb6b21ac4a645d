import { Command } from 'commander';
import { CliError, usageError } from '../exit-codes.js';
import { action, note, out } from '../shared.js';

/** The parts of `@mags/server` this command uses (loaded only when `mags server` runs). */
interface ServerMain {
  /** Runs the daemon until SIGTERM/SIGINT with `mags server` flags; resolves to the exit code. */
  main(argv: string[]): Promise<number>;
}
interface ServerConfigModule {
  CONFIG_SETTINGS: readonly { env: string; flag: string; defaultText: string; unit: string; meaning: string; kind: string }[];
  parseServerFlags(argv: readonly string[]): Record<string, unknown>;
  loadConfig(env?: Record<string, string | undefined>, overrides?: Record<string, unknown>): { imageDir: string; debianMirror?: string };
}
interface ImageModule {
  buildImage(opts: { imageDir: string; force?: boolean; mirror?: string; onProgress?: (msg: string) => void }): Promise<{ version: string; path: string }>;
}

/** Loads a module of the server package; a clear error when it is not installed or not built. */
async function loadServer<T>(subpath: string): Promise<T> {
  const specifier = subpath ? `@mags/server/${subpath}` : '@mags/server';
  try {
    return (await import(specifier)) as T;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new CliError(`The Mags server is not installed next to this CLI (${specifier})`, {
        hint: 'In the repository run `npm install && npm run build`; `mags server` runs the daemon from @mags/server.',
      });
    }
    throw err;
  }
}

function parseFlags(config: ServerConfigModule, argv: string[]): Record<string, unknown> {
  try {
    return config.parseServerFlags(argv);
  } catch (err) {
    if (err instanceof Error && err.name === 'ConfigError') throw usageError(err.message, 'See the flags with: mags server --help');
    throw err;
  }
}

function settingsHelp(config: ServerConfigModule): string {
  const rows = config.CONFIG_SETTINGS.map((s) => {
    const arg = s.kind === 'enum' || s.kind === 'string' || s.kind === 'path' || s.kind === 'url' ? ' <value>' : ' <n>';
    return [`  ${s.flag}${arg}`, `${s.meaning.replace(/`/g, "")} Env ${s.env}; default ${s.defaultText.replace(/`/g, '')}.`];
  });
  const width = Math.max(...rows.map((r) => r[0]!.length)) + 2;
  return rows.map(([a, b]) => a!.padEnd(width) + b).join('\n');
}

export function serverCommand(): Command {
  const cmd = new Command('server')
    .description('Run the Mags server daemon on this host (REST API, scheduler, sandboxes), or build its image')
    .usage('[flags]  |  mags server image build [--force]')
    .helpOption(false)
    .option('-h, --help', 'show help, with every server flag')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument('[args...]', 'server flags (see --help), or `image build [--force]`');
  return cmd.action(action(async (args: string[], flags: { help?: boolean }, command: Command) => {
    const argv = command.args.length ? command.args : args;
    const configModule = await loadServer<ServerConfigModule>('dist/src/config.js');
    if (flags.help) {
      out(`Usage: mags server [flags]
       mags server image build [--force]

Runs the Mags server in the foreground until SIGTERM/SIGINT; it prints
"Mags server ready at <URL>" when it accepts requests. Every flag has an env var; flags win.

Flags:
${settingsHelp(configModule)}

Examples:
  $ sudo mags server                                  # data in /var/lib/mags, API on 127.0.0.1:8090
  $ sudo mags server --port 9000 --data-dir /srv/mags
  $ sudo MAGS_DATABASE_URL=postgres://mags@db/mags mags server
  $ sudo mags server image build --force              # rebuild the sandbox base image`);
      return;
    }
    if (argv[0] === 'image') {
      if (argv[1] !== 'build') throw usageError(`Unknown image command "${argv.slice(1).join(' ')}"`, 'Use: mags server image build [--force]');
      const rest = argv.slice(2);
      const force = rest.includes('--force');
      const overrides = parseFlags(configModule, rest.filter((a) => a !== '--force'));
      let config;
      try {
        config = configModule.loadConfig(process.env, overrides);
      } catch (err) {
        if (err instanceof Error && err.name === 'ConfigError') throw usageError(err.message);
        throw err;
      }
      const image = await loadServer<ImageModule>('dist/src/runtime/image.js');
      const built = await image.buildImage({
        imageDir: config.imageDir,
        force,
        mirror: config.debianMirror,
        onProgress: (msg) => note(msg),
      });
      out(`Image ${built.version} ready at ${built.path}`);
      return;
    }
    parseFlags(configModule, argv); // unknown or malformed flags fail here, before anything starts
    const server = await loadServer<ServerMain>('');
    return server.main(argv);
  }));
}
