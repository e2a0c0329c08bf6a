// docs/CONFIGURATION.md is generated from the schemas and the table loader (scripts/config-docs.ts):
// it must be what the generator writes now, document every table key the loader accepts, and its
// example table must be one the loader accepts.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { renderConfigDocs, REGENERATE, tableKeys, undocumentedTableKeys } from '../../scripts/config-docs.js';
import { frontSchema } from '../../front/front-config.js';
import { backSchema } from '../../back/back-config.js';
import { validateTable } from '../../front/table/table-loader.js';

const file = join(import.meta.dirname, '..', '..', 'docs', 'CONFIGURATION.md');

function envNames(schema: unknown): string[] {
  const out: string[] = [];
  for (const v of Object.values(schema as Record<string, unknown>)) {
    const s = v as Record<string, unknown>;
    if ('default' in s) out.push(String(s.env));
    else out.push(...envNames(s));
  }
  return out;
}

describe('docs/CONFIGURATION.md', () => {
  const committed = readFileSync(file, 'utf8');

  it(`is up to date with the schemas and the table loader (if not: run \`${REGENERATE}\` and commit docs/CONFIGURATION.md)`, () => {
    const fresh = renderConfigDocs();
    if (committed !== fresh) {
      const a = committed.split('\n'), b = fresh.split('\n');
      const i = a.findIndex((l, k) => l !== b[k]);
      expect.fail(`docs/CONFIGURATION.md is stale: run \`${REGENERATE}\` and commit it. First difference at line ${i + 1}:\n  committed: ${a[i]}\n  generated: ${b[i]}`);
    }
  });

  it('names every MSLB_* variable of both schemas', () => {
    const names = [...envNames(frontSchema), ...envNames(backSchema)];
    expect(names.length).toBeGreaterThan(30);
    for (const n of names) expect(committed, n).toContain(`\`${n}\``);
  });

  it('describes every table key the loader accepts', () => {
    const parts = tableKeys();
    expect(parts.map((p) => p.part)).toEqual(expect.arrayContaining(['', 'back', 'healthCheck', 'pool', 'route']));
    expect(parts.find((p) => p.part === 'route')?.keys).toEqual(expect.arrayContaining(['source', 'to', 'service']));
    expect(undocumentedTableKeys(), 'add a line to TABLE_DOCS in scripts/config-docs.ts').toEqual([]);
  });

  it('shows an example table the loader accepts', () => {
    const yaml = /## Table file[\s\S]*?```yaml\n([\s\S]*?)```/.exec(committed)?.[1];
    expect(yaml).toBeTruthy();
    const r = validateTable(parseYaml(yaml!), 'CONFIGURATION.md', {
      services: ['2001:db8:5::80', '192.0.2.80'],
      mode: 'translate',
      encap: { source: 'service', source4: '', source6: '' },
    });
    expect(r.errors).toEqual([]);
    expect(r.table!.routes).toHaveLength(4);
  });
});
