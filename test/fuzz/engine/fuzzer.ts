// The fuzzing loop. Modes:
//   guided  coverage-guided: start from the seed inputs that add coverage; mutate a corpus input;
//           an input that reaches a feature never seen before joins the corpus (and is written to
//           the new-corpus directory) and is mutated further;
//   blind   the same mutations of the seed inputs, but nothing new ever joins the corpus;
//   random  random bytes, no corpus at all;
//   replay  run the seed inputs once each (coverage report, regression check).
// blind and random exist to measure what the guidance is worth. An input that throws is a
// finding: it is written to <artifacts>/crash-<sha1> and the loop stops. Every input is mirrored,
// before it runs, into `current` (shared with the watchdog thread, fuzz-main.ts), which saves it
// as timeout-<sha1> if it never returns.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rng } from '../../../bench/seeded-rng.js';
import { CoverageMap } from './coverage-map.js';
import { Mutator } from './mutator.js';

export type FuzzMode = 'guided' | 'blind' | 'random' | 'replay';
export const FUZZ_MODES: readonly FuzzMode[] = ['guided', 'blind', 'random', 'replay'];

export interface FuzzerOptions {
  fuzz: (data: Buffer) => void;
  mode: FuzzMode;
  seed: number;
  maxLen: number;
  seconds: number;
  maxRuns: number;
  seedDirs: readonly string[];
  newCorpusDir?: string;
  /** Seed inputs from any directory but the first that add coverage are copied here (--merge). */
  mergeInto?: string;
  artifactsDir: string;
  /** [0] executions started, [1] length of the input running now; bytes in `currentBytes`. */
  current?: Int32Array;
  currentBytes?: Uint8Array;
  log: (line: string) => void;
}

export interface FuzzOutcome {
  runs: number;
  seconds: number;
  execPerSec: number;
  /** Sites hit at least once, of `sites` instrumented in the modules the target loaded. */
  cov: number;
  ft: number;
  sites: number;
  corpus: number;
  seeds: number;
  crash?: { file: string; message: string };
  files?: ReturnType<CoverageMap['report']>;
}

export function sha1(b: Uint8Array): string {
  return createHash('sha1').update(b).digest('hex');
}

function seedFiles(dirs: readonly string[]): { path: string; name: string; first: boolean }[] {
  const out: { path: string; name: string; first: boolean }[] = [];
  dirs.forEach((d, i) => {
    if (!existsSync(d)) return;
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isFile()) out.push({ path, name, first: i === 0 });
    }
  });
  return out;
}

export class Fuzzer {
  private readonly cov = new CoverageMap();
  private readonly corpus: Uint8Array[] = [];
  private readonly rand: () => number;
  private readonly mutator: Mutator;
  private readonly buf: Uint8Array;
  private runs = 0;

  constructor(private readonly o: FuzzerOptions) {
    this.rand = rng(o.seed);
    this.mutator = new Mutator(this.rand, this.cov.dictionary(), o.maxLen);
    this.buf = new Uint8Array(o.maxLen);
    // What module setup ran (configs, tables) is no input's coverage, and must not hide what an input
    // reaches; the replay's report counts it, as a line-coverage tool would (a module's setup code
    // is then not reported as never reached).
    if (o.mode !== 'replay') this.cov.reset();
  }

  private below(n: number): number {
    return n <= 1 ? 0 : this.rand() % n;
  }

  /** Runs one input; returns the number of new features, or the finding. */
  private exec(data: Uint8Array): number | { file: string; message: string } {
    const cur = this.o.current;
    if (cur && this.o.currentBytes) {
      this.o.currentBytes.set(data);
      Atomics.store(cur, 1, data.length);
      Atomics.add(cur, 0, 1);
    }
    this.runs++;
    try {
      this.o.fuzz(Buffer.from(data.buffer, data.byteOffset, data.length));
    } catch (e) {
      mkdirSync(this.o.artifactsDir, { recursive: true });
      const file = join(this.o.artifactsDir, `crash-${sha1(data)}`);
      writeFileSync(file, data);
      const err = e as Error;
      return { file, message: err?.stack ?? String(e) };
    }
    return this.cov.collect();
  }

  private pick(): Uint8Array {
    const n = this.corpus.length;
    // a quarter of the time one of the newest inputs: what just found something is often next to more
    if (this.below(4) === 0) return this.corpus[n - 1 - this.below(Math.min(16, n))];
    return this.corpus[this.below(n)];
  }

  private outcome(t0: number, seeds: number, crash?: { file: string; message: string }): FuzzOutcome {
    const seconds = (Date.now() - t0) / 1000;
    return {
      runs: this.runs,
      seconds,
      execPerSec: Math.round(this.runs / Math.max(seconds, 0.001)),
      cov: this.cov.covered,
      ft: this.cov.features,
      sites: this.cov.sites,
      corpus: this.corpus.length,
      seeds,
      crash,
      files: this.o.mode === 'replay' ? this.cov.report() : undefined,
    };
  }

  private status(what: string, t0: number): void {
    const s = (Date.now() - t0) / 1000;
    this.o.log(`#${this.runs} ${what} cov: ${this.cov.covered} ft: ${this.cov.features} corp: ${this.corpus.length} exec/s: ${Math.round(this.runs / Math.max(s, 0.001))}`);
  }

  run(): FuzzOutcome {
    const o = this.o;
    const t0 = Date.now();
    const files = o.mode === 'random' ? [] : seedFiles(o.seedDirs);
    for (const f of files) {
      const data = new Uint8Array(readFileSync(f.path).subarray(0, o.maxLen));
      const r = this.exec(data);
      if (typeof r !== 'number') return this.outcome(t0, files.length, r);
      if (r > 0 || o.mode === 'blind') this.corpus.push(data);
      if (r > 0 && o.mergeInto && !f.first) {
        mkdirSync(o.mergeInto, { recursive: true });
        writeFileSync(join(o.mergeInto, f.name), data);
      }
    }
    this.status('INITED', t0);
    if (o.mode === 'replay') return this.outcome(t0, files.length);

    const deadline = t0 + o.seconds * 1000;
    let nextStatus = t0 + 10_000;
    const other = (): Uint8Array | null => (this.corpus.length === 0 ? null : this.corpus[this.below(this.corpus.length)]);
    while (this.runs < o.maxRuns) {
      if ((this.runs & 255) === 0) {
        const now = Date.now();
        if (now >= deadline) break;
        if (now >= nextStatus) {
          this.status('pulse', t0);
          nextStatus = now + 10_000;
        }
      }
      const len = o.mode === 'random' || this.corpus.length === 0 ? this.mutator.random(this.buf) : this.mutator.mutate(this.pick(), this.buf, other);
      const input = this.buf.subarray(0, len);
      const r = this.exec(input);
      if (typeof r !== 'number') return this.outcome(t0, files.length, r);
      if (r > 0 && o.mode === 'guided') {
        const keep = input.slice();
        this.corpus.push(keep);
        if (o.newCorpusDir) writeFileSync(join(o.newCorpusDir, sha1(keep)), keep);
      }
    }
    this.status('DONE', t0);
    return this.outcome(t0, files.length);
  }
}
