// The fuzzer's view of the counters the instrumented modules registered (instrumenter.ts). After
// each execution `collect` turns every counter that moved into a feature — (site, bucket of its hit
// count), libFuzzer's buckets 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+ — says how many features
// were never seen before, and clears the counters for the next execution.
import type { CoverageFile } from './instrumenter.js';

declare global {
  var __mslbFuzzCoverage: CoverageFile[] | undefined;
}

function bucket(c: number): number {
  if (c <= 3) return c - 1;
  if (c < 8) return 3;
  if (c < 16) return 4;
  if (c < 32) return 5;
  if (c < 128) return 6;
  return 7;
}

export class CoverageMap {
  readonly files: CoverageFile[];
  readonly sites: number;
  private readonly base: Int32Array;
  /** One byte per feature: seen before. */
  private readonly seen: Uint8Array;
  /** Sites hit at least once (libFuzzer's "cov"). */
  private readonly hit: Uint8Array;
  covered = 0;
  features = 0;

  /** Call after the target module (and so every module it imports) has been loaded. */
  constructor() {
    this.files = globalThis.__mslbFuzzCoverage ?? [];
    this.base = new Int32Array(this.files.length);
    let n = 0;
    this.files.forEach((f, i) => {
      this.base[i] = n;
      n += f.counters.length;
    });
    this.sites = n;
    this.seen = new Uint8Array(n * 8);
    this.hit = new Uint8Array(n);
  }

  /** Clears the counters without recording (what ran before the first execution: module setup). */
  reset(): void {
    for (const f of this.files) f.counters.fill(0);
  }

  /** Records the last execution's counters; returns how many features were new. */
  collect(): number {
    let fresh = 0;
    const files = this.files;
    for (let i = 0; i < files.length; i++) {
      const c = files[i].counters;
      const base = this.base[i];
      for (let j = 0; j < c.length; j++) {
        const v = c[j];
        if (v === 0) continue;
        c[j] = 0;
        const s = base + j;
        const f = s * 8 + bucket(v);
        if (this.seen[f] === 0) {
          this.seen[f] = 1;
          fresh++;
          if (this.hit[s] === 0) {
            this.hit[s] = 1;
            this.covered++;
          }
        }
      }
    }
    this.features += fresh;
    return fresh;
  }

  /** Per module: sites hit / sites, and lines with a site hit / lines with a site. */
  report(): Record<string, { sites: number; hit: number; lines: number; linesHit: number }> {
    const out: Record<string, { sites: number; hit: number; lines: number; linesHit: number }> = {};
    this.files.forEach((f, i) => {
      const all = new Set<number>();
      const got = new Set<number>();
      let hit = 0;
      for (let j = 0; j < f.counters.length; j++) {
        all.add(f.lines[j]);
        if (this.hit[this.base[i] + j] !== 0) {
          hit++;
          got.add(f.lines[j]);
        }
      }
      out[f.file] = { sites: f.counters.length, hit, lines: all.size, linesHit: got.size };
    });
    return out;
  }

  /** Integer constants of every instrumented module, deduplicated. */
  dictionary(): number[] {
    const s = new Set<number>();
    for (const f of this.files) for (const c of f.consts) s.add(c);
    return [...s].sort((a, b) => a - b);
  }
}
