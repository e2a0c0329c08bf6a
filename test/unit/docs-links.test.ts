// Everything a user needs is inside the repository: the Markdown files name no file outside it and
// every repository path they name in backticks exists.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const docs = ['README.md', 'CHANGELOG.md', 'deploy/README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

describe('Markdown documentation', () => {
  it('names nothing outside the repository (../shared, the source documents by their file names)', () => {
    for (const f of docs) {
      const text = readFileSync(join(root, f), 'utf8');
      expect(text, f).not.toMatch(/\.\.\/shared\//);
      expect(text, f).not.toMatch(/\bseeds\/\d/);
    }
  });

  it('every docs/, deploy/, scripts/ or test/ path it names in backticks exists', () => {
    const missing: string[] = [];
    for (const f of docs) {
      const text = readFileSync(join(root, f), 'utf8');
      for (const [, p] of text.matchAll(/`((?:docs|deploy|scripts|test)\/[\w./-]+?)(?:#[\w-]+)?`/g)) {
        if (p!.includes('*')) continue;
        if (!existsSync(join(root, p!))) missing.push(`${f}: ${p}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('the README starts with the two commands: the lab and the tests, no sudo', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const first = /^# mslb\n\n```sh\n(.*)\n(.*)\n```/.exec(readme);
    expect(first, 'README.md must open with a sh block of two commands').not.toBeNull();
    expect(first![1]).toMatch(/^\.\/scripts\/setup\.sh && npm run lab\b/);
    expect(first![2]).toMatch(/^\.\/scripts\/setup\.sh && npm test\b/);
    expect(first![1] + first![2]).not.toContain('sudo');
    // CI runs what the README promises.
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/^\.\/scripts\/setup\.sh$/m);
    expect(ci).toMatch(/^npm test$/m);
  });
});
