// Where the repository is, whether this file runs from lab/ (vitest) or dist/lab/ (compiled).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The directory holding mslb's package.json (walks up at most 6 levels). */
export function repoRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mslb') {
      cached = dir;
      return dir;
    }
    dir = dirname(dir);
  }
  throw new Error('cannot find the mslb repository root');
}

/** A compiled entry point under dist/, with a clear error when the build has not run. */
export function distFile(rel: string): string {
  const p = join(repoRoot(), 'dist', rel);
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`npm run build\` first`);
  return p;
}

/** The python with scapy (Debian's; a pyenv python3 on PATH may lack it). */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
