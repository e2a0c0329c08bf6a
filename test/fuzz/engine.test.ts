// The fuzzer itself (test/fuzz/engine): instrumented code computes what the original computes and
// counts the branch it took; the guidance is what finds a input guarded by nested byte checks
// that random inputs do not reach; a run bounded by executions is repeatable from its seed.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { instrumentSource, MARKER } from './engine/instrumenter.js';
import { Fuzzer, type FuzzMode } from './engine/fuzzer.js';

const SRC = `
export function classify(a, b) {
  let r = 0;
  if (a > b) r += 1;
  else if (a === b) { r += 2; }
  for (let i = 0; i < a; i++) r += i & 1 ? 3 : 5;
  switch (b) { case 1: r *= 7; break; case 2: r *= 11; default: r += 13; }
  const f = (x) => x * 2;
  const z = b > 2 ? null : b;
  return (a && b) || (z ?? r) ? f(r) : -1;
}
export function fuzz(d) {
  if (d.length >= 4 && d[0] === 0x4d) {
    if (d[1] === 0x53) {
      if (d[2] === 0x4c) {
        if (d[3] === 0x42) throw new Error('deep');
      }
    }
  }
}
`;

const dir = mkdtempSync(join(tmpdir(), 'mslb-fuzz-engine-'));
let plain: { classify: (a: number, b: number) => number };
let inst: { classify: (a: number, b: number) => number; fuzz: (d: Buffer) => void };

beforeAll(async () => {
  writeFileSync(join(dir, 'plain.mjs'), SRC);
  const r = instrumentSource(SRC, 'toy.js');
  writeFileSync(join(dir, 'toy.mjs'), r.code);
  plain = await import(pathToFileURL(join(dir, 'plain.mjs')).href);
  inst = await import(pathToFileURL(join(dir, 'toy.mjs')).href);
});

function toy(): { counters: Uint32Array; lines: number[]; consts: number[] } {
  const f = globalThis.__mslbFuzzCoverage?.find((x) => x.file === 'toy.js');
  if (!f) throw new Error('toy.js did not register its counters');
  return f;
}

function fuzzRun(mode: FuzzMode, seed: number, runs: number) {
  return new Fuzzer({
    fuzz: inst.fuzz, mode, seed, maxLen: 8, seconds: 60, maxRuns: runs, seedDirs: [],
    artifactsDir: join(dir, `artifacts-${mode}-${seed}`), log: () => {},
  }).run();
}

describe('fuzz engine', () => {
  it('instrumented code returns what the original returns, and counts sites', () => {
    expect(readFileSync(join(dir, 'toy.mjs'), 'utf8').startsWith(MARKER)).toBe(true);
    const c = toy().counters;
    c.fill(0);
    for (let a = -2; a < 6; a++) for (let b = -1; b < 4; b++) expect(inst.classify(a, b)).toBe(plain.classify(a, b));
    // every site of classify (lines 2-11 of SRC) was reached by some (a, b) above
    const sites = toy().lines.map((l, i) => ({ l, i })).filter(({ l }) => l >= 2 && l <= 11);
    expect(sites.length).toBeGreaterThan(15);
    for (const { l, i } of sites) expect(c[i], `site ${i} (line ${l})`).toBeGreaterThan(0);
    expect(toy().consts).toEqual(expect.arrayContaining([0x4c, 0x4d, 0x53, 0x42, 7, 11, 13]));
  });

  it('coverage guidance finds the input behind four nested byte checks; random inputs do not', () => {
    const guided = fuzzRun('guided', 1, 300_000);
    expect(guided.crash?.message).toContain('deep');
    expect(existsSync(guided.crash!.file)).toBe(true);
    expect([...readFileSync(guided.crash!.file).subarray(0, 4)]).toEqual([0x4d, 0x53, 0x4c, 0x42]);
    const random = fuzzRun('random', 1, 300_000);
    expect(random.crash).toBeUndefined();
    expect(random.runs).toBe(300_000);
  });

  it('a run bounded by executions repeats from its seed', () => {
    const same = (r: ReturnType<typeof fuzzRun>) => ({ ...r, seconds: 0, execPerSec: 0, crash: r.crash?.file });
    const a = fuzzRun('guided', 7, 20_000);
    const b = fuzzRun('guided', 7, 20_000);
    const c = fuzzRun('guided', 8, 20_000);
    expect(same(b)).toEqual(same(a));
    expect(same(c)).not.toEqual(same(a));
  });
});
