// One fuzzing process for one target (run-fuzz.ts starts one per target):
//   node dist-fuzz/test/fuzz/engine/fuzz-main.js --target T [--mode guided|blind|random|replay]
//        [--seconds N] [--runs N] [--seed N] [--seeds DIR]... [--corpus DIR] [--artifacts DIR]
//        [--merge-into DIR] [--timeout S] [--max-len N]
// The loop (fuzzer.ts) runs in a worker thread; this thread is the watchdog: an input that has
// not returned after --timeout seconds is saved as <artifacts>/timeout-<sha1> and the worker is
// terminated (JS cannot interrupt itself). The last line on stdout is `FUZZ-RESULT {json}`
// (FuzzOutcome); progress lines go to stderr. Exit code 0: no finding; 1: a crash or timeout.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Fuzzer, FUZZ_MODES, sha1, type FuzzMode, type FuzzOutcome } from './fuzzer.js';

interface Job {
  target: string;
  mode: FuzzMode;
  seconds: number;
  runs: number;
  seed: number;
  seeds: string[];
  corpus?: string;
  mergeInto?: string;
  artifacts: string;
  timeout: number;
  maxLen: number;
  shared: SharedArrayBuffer;
}

const RESULT = 'FUZZ-RESULT ';

function parseArgs(a: string[]): Omit<Job, 'shared'> {
  const one = (k: string): string | undefined => {
    const i = a.lastIndexOf(k);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const seeds: string[] = [];
  a.forEach((x, i) => x === '--seeds' && seeds.push(a[i + 1]));
  const target = one('--target');
  if (!target) throw new Error('--target is required');
  const mode = (one('--mode') ?? 'guided') as FuzzMode;
  if (!FUZZ_MODES.includes(mode)) throw new Error(`--mode ${mode}: one of ${FUZZ_MODES.join(', ')}`);
  return {
    target,
    mode,
    seconds: Number(one('--seconds') ?? 10),
    runs: Number(one('--runs') ?? Number.MAX_SAFE_INTEGER),
    seed: Number(one('--seed') ?? 1),
    seeds,
    corpus: one('--corpus'),
    mergeInto: one('--merge-into'),
    artifacts: one('--artifacts') ?? '.',
    timeout: Number(one('--timeout') ?? 10),
    maxLen: Number(one('--max-len') ?? 2048),
  };
}

async function worker(job: Job): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const m = (await import(pathToFileURL(join(here, '..', 'targets', `${job.target}.js`)).href)) as { fuzz: (d: Buffer) => void };
  const fuzzer = new Fuzzer({
    fuzz: m.fuzz,
    mode: job.mode,
    seed: job.seed,
    maxLen: job.maxLen,
    seconds: job.seconds,
    maxRuns: job.runs,
    seedDirs: job.seeds,
    newCorpusDir: job.corpus,
    mergeInto: job.mergeInto,
    artifactsDir: job.artifacts,
    current: new Int32Array(job.shared, 0, 2),
    currentBytes: new Uint8Array(job.shared, 8),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  parentPort!.postMessage(fuzzer.run());
}

function main(): void {
  const job: Job = { ...parseArgs(process.argv.slice(2)), shared: new SharedArrayBuffer(0) };
  job.shared = new SharedArrayBuffer(8 + job.maxLen);
  if (job.corpus) mkdirSync(job.corpus, { recursive: true });
  const ctl = new Int32Array(job.shared, 0, 2);
  const bytes = new Uint8Array(job.shared, 8);
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: job });
  let done = false;
  const finish = (r: FuzzOutcome): void => {
    if (done) return;
    done = true;
    clearInterval(dog);
    process.stdout.write(`${RESULT}${JSON.stringify(r)}\n`);
    process.exitCode = r.crash ? 1 : 0;
    void w.terminate();
  };
  let lastRuns = -1;
  let since = Date.now();
  const dog = setInterval(() => {
    const runs = Atomics.load(ctl, 0);
    if (runs !== lastRuns) {
      lastRuns = runs;
      since = Date.now();
      return;
    }
    if (runs === 0 || Date.now() - since < job.timeout * 1000) return;
    const input = bytes.slice(0, Atomics.load(ctl, 1));
    mkdirSync(job.artifacts, { recursive: true });
    const file = join(job.artifacts, `timeout-${sha1(input)}`);
    writeFileSync(file, input);
    finish({ runs, seconds: 0, execPerSec: 0, cov: 0, ft: 0, sites: 0, corpus: 0, seeds: 0, crash: { file, message: `input did not return within ${job.timeout} s` } });
  }, 250);
  w.on('message', (r: FuzzOutcome) => finish(r));
  w.on('error', (e) => {
    process.stderr.write(`fuzz worker failed: ${e.stack ?? e}\n`);
    clearInterval(dog);
    process.exitCode = 2;
  });
  w.on('exit', () => clearInterval(dog));
}

if (isMainThread) main();
else await worker(workerData as Job);
