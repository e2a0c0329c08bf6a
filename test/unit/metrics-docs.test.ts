// docs/METRICS.md and docs/RUNBOOK.md against what the services export and what the alert rules say:
// a family, a label value or an alert's use of a family missing from METRICS.md fails here, and so
// does an alert without a runbook entry it links to.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ServiceMetrics, type ServiceRole } from '../../shared/metrics/registry.js';
import { newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { HEALTH_FAILURE_REASONS, HEALTH_PROBE_KINDS } from '../../shared/metrics/health-metrics.js';

const root = join(import.meta.dirname, '..', '..');
const metricsDoc = readFileSync(join(root, 'docs', 'METRICS.md'), 'utf8');
const runbook = readFileSync(join(root, 'docs', 'RUNBOOK.md'), 'utf8');
const rules = (parseYaml(readFileSync(join(root, 'deploy', 'prometheus', 'mslb-alerts.yml'), 'utf8')) as {
  groups: { rules: { alert: string; expr: string; annotations: Record<string, string> }[] }[];
}).groups.flatMap((g) => g.rules);

/**
 * Families each role exports with samples (a family declared with no sample, like the back's empty
 * mslb_decisions_total, is not the back's), and label name=value pairs of mslb_* samples. Each role
 * gets the sources its service gives it: the back has no backs or pools.
 */
async function exported(): Promise<{ roles: Map<string, Set<ServiceRole>>; labels: Map<string, Set<string>> }> {
  const roles = new Map<string, Set<ServiceRole>>();
  const labels = new Map<string, Set<string>>();
  for (const role of ['front', 'back'] as const) {
    const m = new ServiceMetrics({
      role,
      sources: {
        blocks: () => [newCounterBlock()],
        tableRoutes: () => ({ ipv4: 1, ipv6: 1 }),
        services: () => [{ name: '2001:db8:5::80', slot: 0 }],
        ...(role === 'front'
          ? {
              backends: () => [{ name: 'b1', slot: 0, up: true }],
              pools: () => [{ name: 'web', members: 2, up: 1 }],
              // Every probe kind, each with a last failure, so every kind and reason value is exported.
              healthProbes: () => HEALTH_PROBE_KINDS.map((kind) => ({ backend: 'b1', kind, durationSeconds: 0.01, failures: new Float64Array(HEALTH_FAILURE_REASONS.length), lastFailure: 'timeout' as const })),
            }
          : {}),
      },
    });
    if (role === 'front') m.setTableHash('0123456789abcdef'); // mslb_table_info has a sample once a table is in force
    const text = await m.metrics();
    for (const line of text.split('\n')) {
      const t = /^# TYPE (\S+) (\w+)/.exec(line);
      const sampled = t && (t[2] === 'histogram' || t[2] === 'summary' || new RegExp(`^${t[1]}[ {]`, 'm').test(text));
      if (t && sampled) (roles.get(t[1]!) ?? roles.set(t[1]!, new Set()).get(t[1]!)!).add(role);
      const s = /^(mslb_\w+)\{(.*)\} /.exec(line);
      if (s) {
        for (const [, k, v] of s[2]!.matchAll(/(\w+)="([^"]*)"/g)) {
          (labels.get(s[1]!) ?? labels.set(s[1]!, new Set()).get(s[1]!)!).add(`${k}=${v}`);
        }
      }
    }
  }
  return { roles, labels };
}

/** The table rows of METRICS.md: family -> its cells. */
function rows(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of metricsDoc.split('\n')) {
    const m = /^\| `(mslb_\w+)` \|(.*)\|$/.exec(line);
    if (m) out.set(m[1]!, m[2]!.split(' | ').map((c) => c.trim()));
  }
  return out;
}

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');
}

describe('docs/METRICS.md', () => {
  it('has a row for every mslb_* family the front or the back exports, with the right type and role', async () => {
    const { roles } = await exported();
    const doc = rows();
    const mslb = [...roles.keys()].filter((n) => n.startsWith('mslb_'));
    expect(mslb.length).toBeGreaterThan(30);
    const missing = mslb.filter((n) => !doc.has(n));
    expect(missing, 'families exported but not in docs/METRICS.md').toEqual([]);
    for (const n of mslb) {
      const [type, role] = doc.get(n)!;
      const r = roles.get(n)!;
      expect(role, n).toBe(r.size === 2 ? 'both' : [...r][0]);
      expect(type, n).toMatch(/^(counter|gauge)$/);
    }
  });

  it('lists no family the services do not export', async () => {
    const { roles } = await exported();
    for (const n of rows().keys()) expect(roles.has(n), `${n} is in docs/METRICS.md but not exported`).toBe(true);
  });

  it('covers prom-client default families by their prefixes, and nothing else is exported', async () => {
    const { roles } = await exported();
    const others = [...roles.keys()].filter((n) => !n.startsWith('mslb_'));
    expect(others.length).toBeGreaterThan(10);
    for (const n of others) expect(n, 'an exported family outside mslb_/process_/nodejs_').toMatch(/^(process|nodejs)_/);
    expect(metricsDoc).toContain('`process_*`');
    expect(metricsDoc).toContain('`nodejs_*`');
  });

  it('names every label value the services export (reasons, types, families, results)', async () => {
    const { labels } = await exported();
    for (const [family, pairs] of labels) {
      for (const p of pairs) {
        const [k, v] = p.split('=') as [string, string];
        if (k === 'backend' || k === 'pool' || k === 'version' || k === 'hash' || k === 'service') continue; // names from the table / build / config, the table's hash
        expect(metricsDoc, `${family}{${k}="${v}"}`).toContain(`\`${v}\``);
        expect(rows().get(family)?.[2], `${family}'s labels column names ${k}`).toContain(`\`${k}\``);
      }
    }
  });

  it("names, in each family's alerts column, every alert whose expression uses it", () => {
    const doc = rows();
    for (const r of rules) {
      for (const [n] of r.expr.matchAll(/\bmslb_[a-z0-9_]+\b/g)) {
        expect(doc.has(n), `${r.alert} uses ${n}`).toBe(true);
        expect(doc.get(n)![4], `${n}: alerts column`).toContain(r.alert);
      }
    }
  });
});

describe('docs/RUNBOOK.md', () => {
  const headings = new Set([...runbook.matchAll(/^## (.+)$/gm)].map((m) => slug(m[1]!)));

  it('every alert links its runbook entry by runbook_url, and the entry exists', () => {
    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const r of rules) {
      const url = r.annotations.runbook_url;
      expect(url, `${r.alert} has no runbook_url`).toBeDefined();
      const m = /^docs\/RUNBOOK\.md#(.+)$/.exec(url!);
      expect(m, `${r.alert}: ${url}`).not.toBeNull();
      expect(m![1]).toBe(slug(r.alert));
      expect(headings.has(m![1]!), `no "## ${r.alert}" in docs/RUNBOOK.md`).toBe(true);
    }
  });

  it('has no entry for an alert that does not exist', () => {
    const alerts = new Set(rules.map((r) => slug(r.alert)));
    for (const h of headings) if (h.startsWith('mslb')) expect(alerts.has(h), `docs/RUNBOOK.md: ${h}`).toBe(true);
  });
});
