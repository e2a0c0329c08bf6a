// CI-bounded coverage-guided fuzzing of the packet paths (jazzer.js / libFuzzer): every target of
// test/fuzz/targets runs for MSLB_FUZZ_SECONDS (default 10) from the committed seed corpus, and
// must finish with no finding. `npm run fuzz:long` runs the same targets for longer and reports
// coverage. A failure prints the crash file; replay it with
//   node dist-fuzz/test/fuzz/repro.js <target> <crash file>
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fuzzTarget, formatResult, TARGETS } from './run-fuzz.js';
import { prepareJazzer, REPO_ROOT } from './jazzer/prepare-jazzer.js';

const SECONDS = Number(process.env.MSLB_FUZZ_SECONDS ?? 10);
const require = createRequire(import.meta.url);

beforeAll(() => {
  // the targets run as compiled modules (jazzer instruments dist-fuzz/ through its ESM loader hook)
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'test/fuzz/tsconfig.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
  console.log(`jazzer.js: ${prepareJazzer().note}`);
}, 180_000);

describe(`fuzzing the packet paths with jazzer.js (${SECONDS} s per target)`, () => {
  for (const t of TARGETS) {
    it(`${t}: no invariant broken, no exception`, async () => {
      const r = await fuzzTarget(t, { seconds: SECONDS });
      console.log(formatResult(r));
      if (r.crashes.length > 0) console.log(`crash input(s): ${r.crashes.join(' ')}\nreplay: node dist-fuzz/test/fuzz/repro.js ${t} ${r.crashes[0]}\n${r.tail}`);
      expect(r.crashes).toEqual([]);
      expect(r.exitCode, r.tail).toBe(0);
      // the run really fuzzed: many executions, and the instrumented mslb code reported coverage
      expect(r.runs).toBeGreaterThan(5_000);
      expect(r.cov).toBeGreaterThan(50);
    }, (SECONDS + 180) * 1000);
  }
});
