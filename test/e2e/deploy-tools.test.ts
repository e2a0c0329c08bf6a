// deploy/ files run through the real tools that consume them, each where the tool is installed
// (scripts/setup.sh installs prometheus (promtool), bird2 and docker-compose; systemd-analyze and
// kubectl are used when present): promtool checks the scrape config and rules and runs the rules'
// unit tests, and parses every dashboard query as PromQL; docker-compose accepts the compose file;
// BIRD parses its configs; systemd-analyze verifies the units; kubectl kustomize builds the manifests.
// No root, no network.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const deploy = (p: string) => join(root, 'deploy', p);

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).status === 0;
}
function run(cmd: string, args: string[], cwd = root): { code: number; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!has('promtool'))('promtool', () => {
  it('checks the scrape config (with its rule file)', () => {
    const r = run('promtool', ['check', 'config', deploy('prometheus/prometheus.yml')]);
    expect(r.out).toMatch(/SUCCESS/);
    expect(r.code, r.out).toBe(0);
  });

  it('checks the alert rules and runs their unit tests', () => {
    const c = run('promtool', ['check', 'rules', deploy('prometheus/mslb-alerts.yml')]);
    expect(c.code, c.out).toBe(0);
    expect(c.out).toMatch(/SUCCESS: 6 rules found/);
    const t = run('promtool', ['test', 'rules', deploy('prometheus/mslb-alerts.test.yml')]);
    expect(t.code, t.out).toBe(0);
    expect(t.out).toMatch(/SUCCESS/);
  });

  it('the rule tests can fail: an alert whose expression never fires fails them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mslb-promtool-'));
    try {
      const original = readFileSync(deploy('prometheus/mslb-alerts.yml'), 'utf8');
      const rules = original.replace('(mslb_backend_up == 0)', '(mslb_backend_up == 2)');
      expect(rules).not.toBe(original);
      writeFileSync(join(dir, 'mslb-alerts.yml'), rules);
      copyFileSync(deploy('prometheus/mslb-alerts.test.yml'), join(dir, 'mslb-alerts.test.yml'));
      const t = run('promtool', ['test', 'rules', join(dir, 'mslb-alerts.test.yml')]);
      expect(t.code).not.toBe(0);
      expect(t.out).toMatch(/MslbBackDown/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses every Grafana dashboard query as PromQL', () => {
    const dash = JSON.parse(readFileSync(deploy('prometheus/grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    // Grafana's variables replaced by what Grafana would put there.
    const rules = exprs.map((e, i) => ({
      record: `mslb:dashboard_query_${i}`,
      expr: e.replace(/\$__rate_interval/g, '1m').replace(/\$instance/g, '.*'),
    }));
    const dir = mkdtempSync(join(tmpdir(), 'mslb-dash-'));
    try {
      const file = join(dir, 'dashboard-queries.yml');
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
      const r = run('promtool', ['check', 'rules', file]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!has('docker-compose'))('docker-compose', () => {
  it('accepts deploy/compose.yaml (docker-compose config)', () => {
    const r = run('docker-compose', ['-f', deploy('compose.yaml'), 'config'], deploy(''));
    expect(r.code, r.out).toBe(0);
    for (const s of ['front:', 'back1:', 'back2:', 'server1:', 'server2:']) expect(r.out).toContain(s);
    expect(r.out).toContain('NET_ADMIN');
  });
});

describe.skipIf(!has('bird'))('BIRD configs (deploy/bird)', () => {
  it('front.conf and router.conf parse with their site files (bird -p)', () => {
    for (const f of ['front.conf', 'router.conf']) {
      const r = run('bird', ['-p', '-c', deploy(`bird/${f}`)]);
      expect(r.code, `${f}: ${r.out}`).toBe(0);
    }
  });
  it('a broken config is refused (the check can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mslb-bird-'));
    try {
      copyFileSync(deploy('bird/front-site.conf'), join(dir, 'front-site.conf'));
      writeFileSync(join(dir, 'bird.conf'), readFileSync(deploy('bird/front.conf'), 'utf8').replace('route SERVICE6 blackhole;', 'route SERVICE6 nowhere;'));
      expect(run('bird', ['-p', '-c', join(dir, 'bird.conf')]).code).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('shell scripts', () => {
  it('parse (sh -n)', () => {
    for (const f of ['bird/mslb-bird-watch.sh', 'docker/entrypoint.sh']) {
      expect(() => execFileSync('sh', ['-n', deploy(f)]), f).not.toThrow();
    }
  });
});

describe.skipIf(!has('systemd-analyze'))('systemd units', () => {
  it('systemd-analyze verify finds nothing wrong with mslb-front/back.service', () => {
    for (const u of ['mslb-front.service', 'mslb-back.service']) {
      const r = run('systemd-analyze', ['verify', '--man=no', deploy(`systemd/${u}`)]);
      // Complaints about the host (no /opt/mslb, no user mslb here) are not the unit's; syntax is.
      const problems = r.out.split('\n').filter((l) => l.trim() && !/not executable|No such file|Failed to resolve user|does not exist/.test(l));
      expect(problems, `${u}: ${r.out}`).toEqual([]);
    }
  });
});

describe.skipIf(!has('kubectl'))('Kubernetes manifests', () => {
  it('kubectl kustomize builds them (offline)', () => {
    const r = run('kubectl', ['kustomize', deploy('kubernetes')]);
    expect(r.code, r.out).toBe(0);
    expect(r.out.match(/^kind: /gm)?.length).toBe(9);
    expect(r.out).toContain('kind: DaemonSet');
    expect(r.out).toContain('kind: NetworkPolicy');
    expect(r.out).not.toMatch(/image: mslb-\w+:latest/);
  });
});
