// Command line of mslb-front / mslb-back: `--config FILE` (or MSLB_CONFIG), `--help`, `--version`.
// Strict: an unknown flag or a stray argument is a usage error (exit 2) naming it.
import { parseArgs } from 'node:util';
import { MSLB_VERSION } from '../version.js';

export type ServiceArgs =
  | { kind: 'run'; config: string }
  | { kind: 'exit'; code: number; out?: string; err?: string };

export function serviceUsage(prog: string): string {
  return [
    `usage: ${prog} --config FILE`,
    `       ${prog} --help | --version`,
    '  -c, --config FILE  YAML or JSON config (docs/CONFIGURATION.md); MSLB_CONFIG when not given',
    '  -h, --help         this text',
    '      --version      print the version',
    'Needs CAP_NET_ADMIN and /dev/net/tun. SIGHUP reloads, SIGTERM drains and exits.',
    `Reload and check it took effect: mslb reload --admin ADDRESS (see mslb --help).`,
  ].join('\n');
}

/** Pure: what the command line asks for (tests call this; the services call configPathFromArgs). */
export function parseServiceArgs(argv: readonly string[], prog: string, env: NodeJS.ProcessEnv = process.env): ServiceArgs {
  let values: { config?: string; help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }));
  } catch (e) {
    return { kind: 'exit', code: 2, err: `${prog}: ${usageMessage(e)}\n${serviceUsage(prog)}` };
  }
  if (values.help) return { kind: 'exit', code: 0, out: serviceUsage(prog) };
  if (values.version) return { kind: 'exit', code: 0, out: `${prog} ${MSLB_VERSION}` };
  const file = values.config ?? env.MSLB_CONFIG ?? '';
  if (file === '') return { kind: 'exit', code: 2, err: `${prog}: --config FILE is required\n${serviceUsage(prog)}` };
  return { kind: 'run', config: file };
}

/**
 * node:util.parseArgs errors in one line naming the flag ("unknown option '--bogus'"). A flag that
 * takes a value never swallows the next flag: `--config --help` is "--config needs a value".
 */
export function usageMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: string }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const m = /Unknown option '([^']+)'/.exec(msg);
    return `unknown option ${m ? m[1] : msg}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const m = /Option '(?:-\w, )?(--[\w-]+)/.exec(msg);
    if (!m) return msg.split('\n')[0]!;
    return /does not take an argument/.test(msg) ? `${m[1]} takes no value` : `${m[1]} needs a value`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const m = /Unexpected argument '([^']+)'/.exec(msg);
    return `unexpected argument ${m ? m[1] : msg}`;
  }
  return msg.split('\n')[0]!;
}

/** The config file to run with; prints usage/version and exits for --help, --version or a usage error. */
export function configPathFromArgs(argv: readonly string[], prog: string): string {
  const r = parseServiceArgs(argv, prog);
  if (r.kind === 'run') return r.config;
  if (r.out !== undefined) process.stdout.write(`${r.out}\n`);
  if (r.err !== undefined) process.stderr.write(`${r.err}\n`);
  process.exit(r.code);
}
