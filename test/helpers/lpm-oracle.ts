// Brute-force longest-prefix match (the oracle the prefix-table tests judge lookups by) and the
// deterministic PRNG they draw routes and keys from, so a failure reproduces.
import { wordMask } from '../../shared/table/addr.js';
import { rng } from '../../bench/seeded-rng.js';

export { rng };

/** A route: W prefix words (host bits zero), its length, its value. */
export interface R {
  w: number[];
  len: number;
  v: number;
}

/** Value of the longest route covering `key` (W words), -1 when none; a later duplicate wins. */
export function brute(routes: readonly R[], key: readonly number[], W: number): number {
  let best = -1;
  let bestLen = -1;
  for (const r of routes) {
    let ok = true;
    for (let k = 0; k < W; k++) {
      const m = wordMask(r.len - 32 * k);
      if (((key[k]! & m) >>> 0) !== ((r.w[k]! & m) >>> 0)) {
        ok = false;
        break;
      }
    }
    if (ok && r.len >= bestLen) {
      best = r.v;
      bestLen = r.len;
    }
  }
  return best;
}
