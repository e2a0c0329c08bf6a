// Command line of mslb-front / mslb-back: `--config FILE` (or MSLB_CONFIG), `--help`.
export function configPathFromArgs(argv: readonly string[], prog: string): string {
  let file = process.env.MSLB_CONFIG ?? '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: ${prog} --config FILE\n  FILE: YAML or JSON config (see SPEC section 6a); needs CAP_NET_ADMIN and /dev/net/tun\n`);
      process.exit(0);
    } else if (a === '--config' || a === '-c') file = argv[++i] ?? '';
    else if (a.startsWith('--config=')) file = a.slice('--config='.length);
    else {
      process.stderr.write(`${prog}: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!file) {
    process.stderr.write(`${prog}: --config FILE is required\n`);
    process.exit(2);
  }
  return file;
}
