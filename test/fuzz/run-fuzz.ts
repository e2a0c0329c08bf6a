// Runs the jazzer.js fuzz targets (test/fuzz/targets, compiled with the code they test into
// dist-fuzz/ by test/fuzz/tsconfig.json, apart from dist/ so a concurrent build cannot rewrite a
// module under a running fuzzer) for a
// bounded time each, seeded from the committed corpus (test/fuzz/corpus/<target>), and reports per
// target: executions, libFuzzer coverage (edges "cov" and features "ft" of the instrumented mslb
// code), corpus size, crashes. New inputs go to a scratch directory, never into the committed
// corpus (unless --merge, which minimises them into it).
//
//   node dist-fuzz/test/fuzz/run-fuzz.js [--seconds N] [--targets a,b] [--coverage] [--merge] [--json FILE]
//
// --coverage: afterwards replays each target's seeds + new inputs with instrumentation coverage
// on (istanbul) and reports line/branch coverage of the code under test.
// Exit code: 0 when every target ran without a finding, 1 otherwise.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareJazzer, REPO_ROOT } from './jazzer/prepare-jazzer.js';

export const TARGETS = ['parse', 'extwalk', 'lbsp', 'icmp', 'decap', 'front', 'back'] as const;
export type TargetName = (typeof TARGETS)[number];

/** The mslb code the fuzzer instruments for coverage feedback (compiled output). */
const INCLUDES = ['dist-fuzz/shared/packet/', 'dist-fuzz/shared/table/', 'dist-fuzz/shared/engine/', 'dist-fuzz/front/', 'dist-fuzz/back/'];

export interface FuzzResult {
  target: string;
  exitCode: number | null;
  seconds: number;
  runs: number;
  execPerSec: number;
  cov: number;
  ft: number;
  corpus: number;
  seeds: number;
  crashes: string[];
  /** Last lines of the fuzzer's output (for a failure message). */
  tail: string;
  coverage?: { lines: number; branches: number; functions: number; statements: number; files: Record<string, { lines: number; branches: number }> };
}

export interface FuzzOptions {
  seconds: number;
  targets?: readonly string[];
  coverage?: boolean;
  merge?: boolean;
  workDir?: string;
  log?: (line: string) => void;
}

export function corpusDir(t: string): string {
  return join(REPO_ROOT, 'test', 'fuzz', 'corpus', t);
}

function targetModule(t: string): string {
  return join(REPO_ROOT, 'dist-fuzz', 'test', 'fuzz', 'targets', `${t}.js`);
}

let launched: ReturnType<typeof prepareJazzer> | undefined;

function runJazzer(args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const launch = (launched ??= prepareJazzer());
    const p = spawn(process.execPath, [launch.cli, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...launch.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (b: Buffer) => {
      out += b.toString();
      if (out.length > 4_000_000) out = out.slice(-2_000_000);
    };
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

function lastMatch(out: string, re: RegExp): RegExpExecArray | null {
  let m: RegExpExecArray | null = null;
  let x: RegExpExecArray | null;
  const g = new RegExp(re.source, 'g');
  while ((x = g.exec(out)) !== null) m = x;
  return m;
}

export async function fuzzTarget(t: string, o: FuzzOptions): Promise<FuzzResult> {
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), 'mslb-fuzz-'));
  const newCorpus = join(work, `corpus-${t}`);
  const artifacts = join(work, `artifacts-${t}`);
  mkdirSync(newCorpus, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const seeds = corpusDir(t);
  const nSeeds = existsSync(seeds) ? readdirSync(seeds).length : 0;
  const common = ['--sync', '--disable_bug_detectors=.*', ...INCLUDES.flatMap((i) => ['-i', i])];
  const t0 = Date.now();
  const r = await runJazzer(
    [targetModule(t), newCorpus, seeds, ...common, '--',
      `-max_total_time=${o.seconds}`, '-max_len=2048', '-timeout=10', '-rss_limit_mb=4096', '-print_final_stats=1',
      `-artifact_prefix=${artifacts}/`],
    {},
    (o.seconds + 120) * 1000,
  );
  const secs = (Date.now() - t0) / 1000;
  const done = lastMatch(r.out, /#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)\s+cov: (\d+) ft: (\d+) corp: (\d+)/);
  const runsLine = /stat::number_of_executed_units: (\d+)/.exec(r.out);
  const eps = /stat::average_exec_per_sec: (\d+)/.exec(r.out);
  const crashes = readdirSync(artifacts).map((f) => join(artifacts, f));
  const res: FuzzResult = {
    target: t,
    exitCode: r.code,
    seconds: Math.round(secs),
    runs: runsLine ? Number(runsLine[1]) : done ? Number(done[1]) : 0,
    execPerSec: eps ? Number(eps[1]) : 0,
    cov: done ? Number(done[2]) : 0,
    ft: done ? Number(done[3]) : 0,
    corpus: done ? Number(done[4]) : 0,
    seeds: nSeeds,
    crashes,
    tail: r.out.split('\n').slice(-40).join('\n'),
  };
  if (o.merge && r.code === 0) {
    // Minimise seeds + new inputs into the committed corpus (libFuzzer -merge=1 keeps only inputs
    // that add coverage).
    const merged = join(work, `merged-${t}`);
    mkdirSync(merged, { recursive: true });
    const m = await runJazzer([targetModule(t), merged, seeds, newCorpus, ...common, '--', '-merge=1', '-max_len=2048'], {}, 600_000);
    if (m.code === 0 && readdirSync(merged).length > 0) {
      rmSync(seeds, { recursive: true, force: true });
      mkdirSync(seeds, { recursive: true });
      for (const f of readdirSync(merged)) writeFileSync(join(seeds, f), readFileSync(join(merged, f)));
    }
  }
  if (o.coverage) {
    const covDir = join(work, `coverage-${t}`);
    const c = await runJazzer(
      [targetModule(t), newCorpus, seeds, ...common, '--mode=regression', '--coverage', `--coverage_directory=${covDir}`, '--coverage_reporters=json-summary'],
      {},
      900_000,
    );
    const summary = join(covDir, 'coverage-summary.json');
    if (c.code === 0 && existsSync(summary)) {
      const s = JSON.parse(readFileSync(summary, 'utf8')) as Record<string, Record<string, { pct: number }>>;
      const files: Record<string, { lines: number; branches: number }> = {};
      for (const [f, v] of Object.entries(s)) {
        if (f === 'total') continue;
        files[f.replace(`${REPO_ROOT}/`, '')] = { lines: v.lines.pct, branches: v.branches.pct };
      }
      res.coverage = { lines: s.total.lines.pct, branches: s.total.branches.pct, functions: s.total.functions.pct, statements: s.total.statements.pct, files };
    } else {
      o.log?.(`coverage replay of ${t} failed (exit ${c.code}):\n${c.out.split('\n').slice(-20).join('\n')}`);
    }
  }
  if (o.workDir === undefined && res.crashes.length === 0) rmSync(work, { recursive: true, force: true });
  return res;
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult[]> {
  const out: FuzzResult[] = [];
  for (const t of o.targets ?? TARGETS) {
    const r = await fuzzTarget(t, o);
    o.log?.(formatResult(r));
    out.push(r);
  }
  return out;
}

export function formatResult(r: FuzzResult): string {
  const cov = r.coverage ? ` lines ${r.coverage.lines}% branches ${r.coverage.branches}%` : '';
  return `${r.target.padEnd(8)} exit ${r.exitCode} ${String(r.seconds).padStart(4)} s  runs ${String(r.runs).padStart(9)} (${r.execPerSec}/s)  cov ${r.cov} ft ${r.ft}  corpus ${r.corpus} (seeds ${r.seeds})  crashes ${r.crashes.length}${cov}`;
}

async function main(): Promise<void> {
  const a = process.argv.slice(2);
  const arg = (k: string) => {
    const i = a.indexOf(k);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const seconds = Number(arg('--seconds') ?? 60);
  const targets = arg('--targets')?.split(',') ?? [...TARGETS];
  for (const t of targets) if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target ${t} (${TARGETS.join(', ')})`);
  const launch = prepareJazzer();
  console.log(`jazzer.js: ${launch.note}`);
  console.log(`fuzzing ${targets.join(', ')} for ${seconds} s each`);
  const work = mkdtempSync(join(tmpdir(), 'mslb-fuzz-'));
  const results = await runFuzz({ seconds, targets, coverage: a.includes('--coverage'), merge: a.includes('--merge'), workDir: work, log: (l) => console.log(l) });
  const totalRuns = results.reduce((s, r) => s + r.runs, 0);
  const crashes = results.flatMap((r) => r.crashes);
  console.log(`total: ${totalRuns} executions, ${crashes.length} crashes, ${results.filter((r) => r.exitCode !== 0).length} targets with a non-zero exit`);
  for (const r of results) {
    if (r.exitCode !== 0) console.log(`--- ${r.target} output tail ---\n${r.tail}`);
    if (r.coverage) {
      console.log(`${r.target} coverage by file (lines% / branches%):`);
      for (const [f, v] of Object.entries(r.coverage.files)) console.log(`   ${f.padEnd(44)} ${v.lines} / ${v.branches}`);
    }
  }
  const json = arg('--json');
  if (json) writeFileSync(json, JSON.stringify({ seconds, results: results.map(({ tail: _t, ...r }) => r) }, null, 1));
  if (crashes.length === 0) rmSync(work, { recursive: true, force: true });
  else console.log(`crash inputs kept in ${work}`);
  process.exitCode = crashes.length === 0 && results.every((r) => r.exitCode === 0) ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) void main();
