// The version every command prints (--version) and mslb_build_info exports: package.json's, read
// once at start so a release only bumps package.json. Found by walking up from this file, which
// runs both compiled (dist/shared/) and from source (tests).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'mslb' && typeof p.version === 'string') return p.version;
    } catch {
      // not here: one level up
    }
    dir = dirname(dir);
  }
  return '0.0.0-unknown';
}

export const MSLB_VERSION = packageVersion();
