// A real Prometheus server (Debian's `prometheus`) for the lab: generated scrape config, storage in
// a temp dir with retention bounds, started in a namespace of the lab, stopped (and its data removed)
// by stop() or by the lab's cleanup. Its HTTP API answers inside that namespace.
//   const prom = await Prometheus.start(lab.set, lab.ns.front, dir, [{ job: 'mslb-front', targets: ['[::1]:9101'] }]);
//   const t = await prom.targets();   // [{ job, instance, health: 'up' | 'down' | 'unknown', lastError }]
//   await prom.stop();
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { waitFor, type NetnsSet } from './netns.js';
import { stopServiceProcess } from './service-process.js';

export interface ScrapeJob {
  job: string;
  /** host:port, IPv6 as [addr]:port */
  targets: string[];
}

export interface PromTarget {
  job: string;
  instance: string;
  health: string;
  lastError: string;
  scrapeUrl: string;
}

/** prometheus.yml for the jobs: 1 s scrapes (the lab's timescale). */
export function scrapeConfig(jobs: ScrapeJob[], intervalS = 1): string {
  const lines = [
    'global:',
    `  scrape_interval: ${intervalS}s`,
    `  scrape_timeout: ${intervalS}s`,
    `  evaluation_interval: ${intervalS}s`,
    'scrape_configs:',
  ];
  for (const j of jobs) {
    lines.push(`  - job_name: ${JSON.stringify(j.job)}`, '    static_configs:', `      - targets: [${j.targets.map((t) => JSON.stringify(t)).join(', ')}]`);
  }
  return lines.join('\n') + '\n';
}

export class Prometheus {
  private constructor(
    private readonly set: NetnsSet,
    readonly ns: string,
    readonly dir: string,
    readonly listen: string,
    private readonly proc: ChildProcess,
    private readonly log: string[],
  ) {}

  /** Start and wait (bounded) until /-/ready answers 200. */
  static async start(set: NetnsSet, ns: string, dir: string, jobs: ScrapeJob[], opts: { listen?: string; timeoutMs?: number } = {}): Promise<Prometheus> {
    const listen = opts.listen ?? '[::1]:9090';
    mkdirSync(join(dir, 'data'), { recursive: true });
    const cfg = join(dir, 'prometheus.yml');
    writeFileSync(cfg, scrapeConfig(jobs));
    const proc = set.spawn(ns, 'prometheus', [
      `--config.file=${cfg}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--storage.tsdb.retention.time=1h',
      '--storage.tsdb.retention.size=64MB',
      `--web.listen-address=${listen}`,
      '--log.level=warn',
    ]);
    const log: string[] = [];
    const keep = (d: Buffer) => {
      log.push(d.toString());
      if (log.length > 200) log.splice(0, log.length - 200);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const p = new Prometheus(set, ns, dir, listen, proc, log);
    try {
      await waitFor(async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`prometheus exited (${proc.exitCode ?? proc.signalCode}): ${log.join('').slice(-800)}`);
        const r = await p.get('/-/ready', 2000);
        return r.status === 200;
      }, opts.timeoutMs ?? 20_000, 'prometheus /-/ready');
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  /** GET a path of the Prometheus HTTP API inside its namespace. */
  async get(path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
    const r = await this.set.run(this.ns, 'curl', ['-s', '--max-time', String(timeoutMs / 1000), '-w', '\n%{http_code}', `http://${this.listen}${path}`], { timeoutMs: timeoutMs + 2000 });
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0)) };
  }

  /** Active scrape targets and their health. */
  async targets(): Promise<PromTarget[]> {
    const r = await this.get('/api/v1/targets?state=active');
    if (r.status !== 200) return [];
    const j = JSON.parse(r.body) as { data: { activeTargets: { labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }[] } };
    return j.data.activeTargets.map((t) => ({ job: t.labels.job ?? '', instance: t.labels.instance ?? '', health: t.health, lastError: t.lastError, scrapeUrl: t.scrapeUrl }));
  }

  /** Instant query: [{ metric labels, value }]. */
  async query(q: string): Promise<{ metric: Record<string, string>; value: number }[]> {
    const r = await this.get(`/api/v1/query?query=${encodeURIComponent(q)}`);
    if (r.status !== 200) throw new Error(`query ${q}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    const j = JSON.parse(r.body) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    return j.data.result.map((x) => ({ metric: x.metric, value: Number(x.value[1]) }));
  }

  /** The server's recent output. */
  output(): string {
    return this.log.join('');
  }

  /** SIGTERM (SIGKILL after graceMs), then remove its storage. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    await stopServiceProcess(this.proc, graceMs);
    rmSync(join(this.dir, 'data'), { recursive: true, force: true });
  }
}
