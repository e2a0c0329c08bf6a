// The SHA-256 of the TUN addon's sources (binding.gyp and shared/tun/native/*), written beside the
// prebuilt binaries by `npm run prebuild` so a test can tell when they were built from older sources.
//   node scripts/native-sources.mjs          print the hash
//   node scripts/native-sources.mjs --write  write prebuilds/SOURCES.sha256
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const stampFile = join(root, 'prebuilds', 'SOURCES.sha256');

export function nativeSourcesHash() {
  const native = join('shared', 'tun', 'native');
  const files = ['binding.gyp', ...readdirSync(join(root, native)).filter((f) => /\.(c|h)$/.test(f)).sort().map((f) => join(native, f))];
  const h = createHash('sha256');
  for (const f of files) h.update(`${f}\0`).update(readFileSync(join(root, f))).update('\0');
  return h.digest('hex');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const hash = nativeSourcesHash();
  if (process.argv.includes('--write')) writeFileSync(stampFile, `${hash}\n`);
  process.stdout.write(`${hash}\n`);
}
