// CI-bounded coverage-guided fuzzing of the packet paths (test/fuzz/engine): every target of
// test/fuzz/targets runs for MSLB_FUZZ_SECONDS (default 10) from the committed seed corpus, and
// must finish with no finding. `npm run fuzz:long` runs the same targets for longer and reports
// coverage. A failure prints the finding's file; replay it with
//   node dist-fuzz/test/fuzz/repro.js <target> <file>
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fuzzTarget, formatResult, instrument, REPO_ROOT, TARGETS } from './run-fuzz.js';

const SECONDS = Number(process.env.MSLB_FUZZ_SECONDS ?? 10);
const require = createRequire(import.meta.url);

beforeAll(() => {
  // the targets run as compiled modules, the code under test instrumented for coverage feedback
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'test/fuzz/tsconfig.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
  const i = instrument();
  console.log(`instrumented ${i.files} modules, ${i.sites} sites`);
}, 180_000);

describe(`coverage-guided fuzzing of the packet paths (${SECONDS} s per target)`, () => {
  for (const t of TARGETS) {
    it(`${t}: no invariant broken, no exception`, async () => {
      const r = await fuzzTarget(t, { seconds: SECONDS });
      console.log(formatResult(r));
      if (r.crashes.length > 0) console.log(`finding(s): ${r.crashes.join(' ')}\nreplay: node dist-fuzz/test/fuzz/repro.js ${t} ${r.crashes[0]}\n${r.tail}`);
      expect(r.crashes).toEqual([]);
      expect(r.exitCode, r.tail).toBe(0);
      // the run really fuzzed: many executions, the instrumented mslb code reported coverage, and
      // the guidance kept inputs beyond the seeds that reach something new
      expect(r.runs).toBeGreaterThan(5_000);
      expect(r.cov).toBeGreaterThan(50);
      expect(r.corpus).toBeGreaterThan(0);
    }, (SECONDS + 180) * 1000);
  }
});
