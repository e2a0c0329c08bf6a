// Source-prefix table benchmark: build time, lookups/s and memory at 1k, 100k and 1M routes
// (half IPv4, half IPv6; half in documentation-like space, half random). Run after `npm run build`:
//   node dist/bench/table-bench.js [maxRoutes]
import { PrefixTableBuilder } from '../shared/table/prefix-table.js';
import { wordMask } from '../shared/table/addr.js';
import { rng } from './seeded-rng.js';


function run(n: number): void {
  const r = rng(n);
  // Generate the route list first (what the table loader would hand over), then time the build.
  const v4 = new Uint32Array(n), l4 = new Uint8Array(n);
  const v6 = new Uint32Array(n * 4), l6 = new Uint8Array(n);
  const n4 = n >>> 1, n6 = n - n4;
  for (let i = 0; i < n4; i++) {
    const doc = i & 1;
    v4[i] = doc ? ((0xcb007100 & 0xffff0000) | (r() & 0xffff)) >>> 0 : r(); // 203.0.x.y-ish or random
    l4[i] = doc ? 16 + (r() % 17) : 8 + (r() % 25);
  }
  for (let i = 0; i < n6; i++) {
    const doc = i & 1;
    v6[i * 4] = doc ? 0x20010db8 : r();
    v6[i * 4 + 1] = r(); v6[i * 4 + 2] = r(); v6[i * 4 + 3] = r();
    l6[i] = doc ? 32 + (r() % 97) : 16 + (r() % 113);
  }
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const b = new PrefixTableBuilder();
  for (let i = 0; i < n4; i++) b.addV4(v4[i]!, l4[i]!, i & 1023);
  for (let i = 0; i < n6; i++) b.addV6(v6[i * 4]!, v6[i * 4 + 1]!, v6[i * 4 + 2]!, v6[i * 4 + 3]!, l6[i]!, i & 1023);
  const t = b.build();
  const buildMs = performance.now() - t0;
  const rssAfter = process.memoryUsage().rss;

  // Lookup keys: half drawn from inside routes (so matches are real), half random.
  const Q = 1 << 20;
  const k4 = new Uint32Array(Q), k6 = new Uint32Array(Q * 4);
  for (let i = 0; i < Q; i++) {
    const j = r() % n4;
    k4[i] = i & 1 ? r() : (v4[j]! | (r() & ~wordMask(l4[j]!))) >>> 0;
    const m = r() % n6;
    for (let k = 0; k < 4; k++) k6[i * 4 + k] = i & 1 ? r() : (v6[m * 4 + k]! | (r() & ~wordMask(l6[m]! - 32 * k))) >>> 0;
  }
  let sink = 0;
  const rounds = 4;
  const t1 = performance.now();
  for (let rd = 0; rd < rounds; rd++) for (let i = 0; i < Q; i++) sink += t.lookup4(k4[i]!);
  const ms4 = performance.now() - t1;
  const t2 = performance.now();
  for (let rd = 0; rd < rounds; rd++) for (let i = 0; i < Q; i++) {
    const b4 = i << 2;
    sink += t.lookup6(k6[b4]!, k6[b4 + 1]!, k6[b4 + 2]!, k6[b4 + 3]!);
  }
  const ms6 = performance.now() - t2;
  const lps = (ms: number) => ((rounds * Q) / ms / 1000).toFixed(2) + ' M/s';
  console.log(
    `routes=${String(n).padStart(8)} (v4 ${n4}, v6 ${n6})  build=${buildMs.toFixed(0)} ms  ` +
      `lookup v4=${lps(ms4)} v6=${lps(ms6)}  table=${(t.bytes / 1048576).toFixed(1)} MiB  ` +
      `rss delta=${((rssAfter - rssBefore) / 1048576).toFixed(0)} MiB  rss=${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB  (sink ${sink & 1})`,
  );
}

const max = Number(process.argv[2] ?? 1_000_000);
for (const n of [1_000, 100_000, 1_000_000]) if (n <= max) run(n);
