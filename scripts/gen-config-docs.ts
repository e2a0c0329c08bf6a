// Writes docs/CONFIGURATION.md (`npm run docs:config`); with --check, only says whether it is stale.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs, REGENERATE, undocumentedTableKeys } from './config-docs.js';

/** The repository root: the nearest directory above this file (scripts/ or dist/scripts/) with a package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

const file = join(repoRoot(), 'docs', 'CONFIGURATION.md');
const text = renderConfigDocs();
for (const k of undocumentedTableKeys()) process.stderr.write(`gen-config-docs: table key ${k} has no description in scripts/config-docs.ts\n`);
if (process.argv.includes('--check')) {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (current !== text) {
    process.stderr.write(`${file} is stale: run \`${REGENERATE}\`\n`);
    process.exit(1);
  }
  process.stdout.write(`${file} is up to date\n`);
} else {
  writeFileSync(file, text);
  process.stdout.write(`wrote ${file}\n`);
}
