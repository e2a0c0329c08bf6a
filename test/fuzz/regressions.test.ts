// Inputs the fuzzer once broke an invariant with (test/fuzz/regressions/<target>/<name>), replayed
// through the same fuzz targets without the fuzzer on every test run: each must now pass. A case
// that needs earlier state is a directory whose files are replayed in name order.
import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const DIR = join(import.meta.dirname, 'regressions');
const cases = existsSync(DIR)
  ? readdirSync(DIR).flatMap((t) => readdirSync(join(DIR, t)).map((f) => ({ target: t, file: f })))
  : [];

describe('fuzz findings stay fixed', () => {
  it('has regression inputs', () => {
    expect(cases.length).toBeGreaterThan(0);
  });
  for (const c of cases) {
    it(`${c.target}: ${c.file}`, async () => {
      const m = (await import(`./targets/${c.target}.ts`)) as { fuzz: (d: Buffer) => void };
      const p = join(DIR, c.target, c.file);
      const inputs = statSync(p).isDirectory() ? readdirSync(p).sort().map((f) => join(p, f)) : [p];
      for (const f of inputs) expect(() => m.fuzz(readFileSync(f)), f).not.toThrow();
    });
  }
});
