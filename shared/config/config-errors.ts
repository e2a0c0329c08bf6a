// Errors a person can act on: which file, which entry, and why. One line each when printed.

export interface ConfigError {
  file: string;
  entry: string; // e.g. "routes[3].source", "backs.b2.address", "tun.mtu", "" for the whole file
  reason: string;
}

export function formatError(e: ConfigError): string {
  return e.entry ? `${e.file}: ${e.entry}: ${e.reason}` : `${e.file}: ${e.reason}`;
}

export function formatErrors(errs: readonly ConfigError[]): string {
  return errs.map(formatError).join('\n');
}
