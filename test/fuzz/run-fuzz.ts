// Runs the fuzz targets (test/fuzz/targets, compiled with the code they test into dist-fuzz/ by
// test/fuzz/tsconfig.json, apart from dist/ so a concurrent build cannot rewrite a module under a
// running fuzzer) with the project's own coverage-guided fuzzer (test/fuzz/engine), one process per
// target, for a bounded time (and optionally number of executions) each, seeded from the committed
// corpus (test/fuzz/corpus/<target>), and reports per target: executions, coverage (sites of the
// instrumented mslb code hit, and features), corpus size, findings. New inputs go to a scratch
// directory, never into the committed corpus (unless --merge, which adds those that still add
// coverage after the committed seeds).
//
//   node dist-fuzz/test/fuzz/run-fuzz.js [--seconds N] [--runs N] [--targets a,b] [--mode M] [--no-seeds]
//        [--seed N] [--coverage] [--merge] [--json FILE]
//
// --mode guided (default) | blind (mutate the seeds, keep nothing new) | random (random bytes):
// the last two measure what the coverage guidance is worth. --coverage: afterwards replays each
// target's seeds + new inputs and reports, per module, sites and lines reached.
// Exit code: 0 when every target ran without a finding, 1 otherwise.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { instrumentTree } from './engine/instrumenter.js';
import type { FuzzOutcome } from './engine/fuzzer.js';

export const TARGETS = ['parse', 'extwalk', 'lbsp', 'icmp', 'decap', 'front', 'back'] as const;
export type TargetName = (typeof TARGETS)[number];

/** Repository root (this file runs from test/fuzz or dist-fuzz/test/fuzz). */
export const REPO_ROOT = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'test', 'fuzz'))) return d;
    d = dirname(d);
  }
  throw new Error('repository root not found');
})();
const DIST = join(REPO_ROOT, 'dist-fuzz');
const ENGINE = join(DIST, 'test', 'fuzz', 'engine', 'fuzz-main.js');

/**
 * The mslb code instrumented for coverage feedback (compiled output under dist-fuzz/): the packet
 * paths; not what runs only at start-up or talks to the system (config loading, logging, metrics
 * export, netlink, admin server, service entry points).
 */
const INSTRUMENT = ['shared', 'front', 'back'];
const NOT_INSTRUMENTED = ['shared/admin', 'shared/config', 'shared/metrics', 'shared/netlink', 'shared/log.js', 'shared/version.js', 'front/main.js', 'back/main.js', 'front/worker.js', 'back/worker.js'];

let instrumented = false;
/** Instruments dist-fuzz/ once per process (a no-op for modules already instrumented). */
export function instrument(): { files: number; sites: number } {
  if (instrumented) return { files: 0, sites: 0 };
  instrumented = true;
  return instrumentTree(DIST, INSTRUMENT, NOT_INSTRUMENTED);
}

export interface FuzzResult {
  target: string;
  exitCode: number | null;
  seconds: number;
  runs: number;
  execPerSec: number;
  /** Instrumented sites (blocks, branch arms) hit at least once, of `sites`. */
  cov: number;
  sites: number;
  /** Features: (site, hit-count bucket) pairs seen. */
  ft: number;
  corpus: number;
  seeds: number;
  /** Inputs this run kept beyond the seeds (reached coverage nothing before had). */
  newInputs: number;
  crashes: string[];
  /** The finding's message (stack) and the last lines of the fuzzer's output (for a failure message). */
  tail: string;
  coverage?: { sites: number; lines: number; files: Record<string, { sites: number; lines: number }> };
}

export interface FuzzOptions {
  seconds: number;
  runs?: number;
  targets?: readonly string[];
  mode?: 'guided' | 'blind' | 'random';
  noSeeds?: boolean;
  seed?: number;
  coverage?: boolean;
  merge?: boolean;
  workDir?: string;
  log?: (line: string) => void;
}

export function corpusDir(t: string): string {
  return join(REPO_ROOT, 'test', 'fuzz', 'corpus', t);
}

function runEngine(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; result?: FuzzOutcome }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [ENGINE, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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
      const line = out.split('\n').reverse().find((l) => l.startsWith('FUZZ-RESULT '));
      resolve({ code, out, result: line ? (JSON.parse(line.slice('FUZZ-RESULT '.length)) as FuzzOutcome) : undefined });
    });
  });
}

const pct = (a: number, b: number): number => (b === 0 ? 0 : Math.round((1000 * a) / b) / 10);

export async function fuzzTarget(t: string, o: FuzzOptions): Promise<FuzzResult> {
  instrument();
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), 'mslb-fuzz-'));
  const newCorpus = join(work, `corpus-${t}`);
  const artifacts = join(work, `artifacts-${t}`);
  mkdirSync(newCorpus, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const seeds = corpusDir(t);
  const nSeeds = existsSync(seeds) ? readdirSync(seeds).length : 0;
  const r = await runEngine(
    ['--target', t, '--mode', o.mode ?? 'guided', '--seconds', String(o.seconds), '--seed', String(o.seed ?? 1),
      ...(o.runs !== undefined ? ['--runs', String(o.runs)] : []), ...(o.noSeeds ? [] : ['--seeds', newCorpus, '--seeds', seeds]),
      '--corpus', newCorpus, '--artifacts', artifacts, '--timeout', '10', '--max-len', '2048'],
    (o.seconds + 120) * 1000,
  );
  const x = r.result;
  const crashes = readdirSync(artifacts).map((f) => join(artifacts, f));
  const res: FuzzResult = {
    target: t,
    exitCode: r.code,
    seconds: Math.round(x?.seconds ?? 0),
    runs: x?.runs ?? 0,
    execPerSec: x?.execPerSec ?? 0,
    cov: x?.cov ?? 0,
    sites: x?.sites ?? 0,
    ft: x?.ft ?? 0,
    corpus: x?.corpus ?? 0,
    seeds: o.noSeeds ? 0 : nSeeds,
    newInputs: readdirSync(newCorpus).length,
    crashes,
    tail: `${x?.crash ? `${x.crash.message}\n` : ''}${r.out.split('\n').slice(-40).join('\n')}`,
  };
  if (o.merge && r.code === 0) {
    // Add to the committed corpus the new inputs that still reach something the seeds do not
    // (a guided run over the seeds then the new inputs, zero executions beyond them).
    const merged = join(work, `merged-${t}`);
    const m = await runEngine(['--target', t, '--mode', 'guided', '--runs', '0', '--seeds', seeds, '--seeds', newCorpus, '--merge-into', merged, '--artifacts', artifacts], 600_000);
    if (m.code === 0 && existsSync(merged)) for (const f of readdirSync(merged)) copyFileSync(join(merged, f), join(seeds, f));
  }
  if (o.coverage) {
    const c = await runEngine(['--target', t, '--mode', 'replay', '--seeds', seeds, '--seeds', newCorpus, '--artifacts', artifacts], 900_000);
    if (c.code === 0 && c.result?.files) {
      const files: Record<string, { sites: number; lines: number }> = {};
      let s = 0;
      let sh = 0;
      let l = 0;
      let lh = 0;
      for (const [f, v] of Object.entries(c.result.files)) {
        // modules the target loads but no input reaches (the other role's code) are not its subject
        if (v.hit === 0) continue;
        s += v.sites;
        sh += v.hit;
        l += v.lines;
        lh += v.linesHit;
        files[f] = { sites: pct(v.hit, v.sites), lines: pct(v.linesHit, v.lines) };
      }
      res.coverage = { sites: pct(sh, s), lines: pct(lh, l), files };
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
  const cov = r.coverage ? ` replay: sites ${r.coverage.sites}% lines ${r.coverage.lines}%` : '';
  return `${r.target.padEnd(8)} exit ${r.exitCode} ${String(r.seconds).padStart(4)} s  runs ${String(r.runs).padStart(9)} (${r.execPerSec}/s)  cov ${r.cov}/${r.sites} ft ${r.ft}  corpus ${r.corpus} (seeds ${r.seeds}, new ${r.newInputs})  crashes ${r.crashes.length}${cov}`;
}

async function main(): Promise<void> {
  const a = process.argv.slice(2);
  const arg = (k: string) => {
    const i = a.lastIndexOf(k); // the last wins: `npm run fuzz -- --seconds 5` overrides the script's 30
    return i >= 0 ? a[i + 1] : undefined;
  };
  const seconds = Number(arg('--seconds') ?? 60);
  const targets = arg('--targets')?.split(',') ?? [...TARGETS];
  for (const t of targets) if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target ${t} (${TARGETS.join(', ')})`);
  const mode = (arg('--mode') ?? 'guided') as FuzzOptions['mode'];
  if (!['guided', 'blind', 'random'].includes(mode!)) throw new Error(`--mode ${mode}: guided, blind or random`);
  const runs = arg('--runs') === undefined ? undefined : Number(arg('--runs'));
  const inst = instrument();
  console.log(`instrumented ${inst.files} modules (${inst.sites} sites) under dist-fuzz/`);
  console.log(`fuzzing ${targets.join(', ')} for ${seconds} s${runs ? ` or ${runs} executions` : ''} each, mode ${mode}${a.includes('--no-seeds') ? ', no seeds' : ''}`);
  const work = mkdtempSync(join(tmpdir(), 'mslb-fuzz-'));
  const results = await runFuzz({
    seconds, runs, targets, mode, noSeeds: a.includes('--no-seeds'), seed: Number(arg('--seed') ?? 1),
    coverage: a.includes('--coverage'), merge: a.includes('--merge'), workDir: work, log: (l) => console.log(l),
  });
  const totalRuns = results.reduce((s, r) => s + r.runs, 0);
  const crashes = results.flatMap((r) => r.crashes);
  console.log(`total: ${totalRuns} executions, ${crashes.length} crashes, ${results.filter((r) => r.exitCode !== 0).length} targets with a non-zero exit`);
  for (const r of results) {
    if (r.exitCode !== 0) console.log(`--- ${r.target} output tail ---\n${r.tail}`);
    if (r.coverage) {
      console.log(`${r.target} coverage by module reached (sites% / lines%):`);
      for (const [f, v] of Object.entries(r.coverage.files)) console.log(`   ${f.padEnd(44)} ${v.sites} / ${v.lines}`);
    }
  }
  const json = arg('--json');
  if (json) writeFileSync(json, JSON.stringify({ seconds, results: results.map(({ tail: _t, ...r }) => r) }, null, 1));
  if (crashes.length === 0) rmSync(work, { recursive: true, force: true });
  else console.log(`finding inputs kept in ${work}; replay: node dist-fuzz/test/fuzz/repro.js <target> <file>`);
  process.exitCode = crashes.length === 0 && results.every((r) => r.exitCode === 0) ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) void main();
