// Maglev lookup table (Eisenbud et al., NSDI'16; weighted like Katran's MaglevHashV2).
// Each member's permutation (offset, skip) comes from a keyed hash (SipHash-1-3 with the front's
// hashKey) of its NAME, and members are filled in name order, so every front with the same key
// computes the same table from the same member set whatever the order the config lists them in,
// and who does not know the key cannot tell which slots a member holds. The table maps
// hash % size -> member position.

import { sipHashBytes, sipKey } from '../../shared/packet/siphash.js';

export const MAGLEV_DEFAULT_SIZE = 65537; // prime, as in Katran

/** Built-in hash key ("mslb builtin key"): in the source, so only for fronts without hashKey. */
export const BUILTIN_HASH_KEY = '6d736c62206275696c74696e206b6579';
export const BUILTIN_KEY_WORDS = sipKey(Uint8Array.from(Buffer.from(BUILTIN_HASH_KEY, 'hex')));

export interface MaglevMember {
  name: string;
  /** 0..1000, default 1. 0 drains: no slot, unless every included member has weight 0. */
  weight?: number;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/**
 * Fill `out` (length = table size, prime) with member positions (index into `members`), or -1
 * everywhere when `members` is empty. `include[i] === false` leaves member i out (down).
 */
export function buildMaglev(members: readonly MaglevMember[], out: Int32Array, include?: readonly boolean[], key: Uint32Array = BUILTIN_KEY_WORDS): void {
  const M = out.length;
  if (!isPrime(M)) throw new Error(`maglev table size ${M} is not prime`);
  const idx: number[] = [];
  for (let i = 0; i < members.length; i++) if (!include || include[i]) idx.push(i);
  out.fill(-1);
  if (idx.length === 0) return;
  // Name order makes the table independent of list order; ties (same name) keep list order.
  idx.sort((a, b) => (members[a]!.name < members[b]!.name ? -1 : members[a]!.name > members[b]!.name ? 1 : a - b));
  const n = idx.length;
  const offset = new Uint32Array(n), skip = new Uint32Array(n), next = new Uint32Array(n);
  const weight = new Float64Array(n), credit = new Float64Array(n);
  let maxW = 0;
  const h = new Uint32Array(2);
  const enc = new TextEncoder();
  for (let j = 0; j < n; j++) {
    const m = members[idx[j]!]!;
    sipHashBytes(key, enc.encode(m.name), h); // one 64-bit hash: low half the offset, high half the skip
    offset[j] = h[0]! % M;
    skip[j] = (h[1]! % (M - 1)) + 1;
    const w = m.weight ?? 1;
    weight[j] = w > 0 ? w : 0;
    if (weight[j]! > maxW) maxW = weight[j]!;
  }
  if (maxW === 0) { weight.fill(1); maxW = 1; } // all draining: spread evenly rather than send nowhere
  let filled = 0;
  // Each round a member earns weight/maxWeight of a slot; the heaviest places one per round.
  while (filled < M) {
    for (let j = 0; j < n && filled < M; j++) {
      credit[j] += weight[j]! / maxW;
      while (credit[j]! >= 1 && filled < M) {
        credit[j]! -= 1;
        // Next free slot in member j's permutation: (offset + next*skip) mod M.
        let c = (offset[j]! + (next[j]! * skip[j]!) % M) % M;
        while (out[c] !== -1) {
          next[j]!++;
          c = (offset[j]! + (next[j]! * skip[j]!) % M) % M;
        }
        out[c] = idx[j]!;
        next[j]!++;
        filled++;
      }
    }
  }
}

/** Convenience: a new table over SharedArrayBuffer. */
export function maglevTable(members: readonly MaglevMember[], size = MAGLEV_DEFAULT_SIZE, include?: readonly boolean[], key?: Uint32Array): Int32Array {
  const t = new Int32Array(new SharedArrayBuffer(size * 4));
  buildMaglev(members, t, include, key);
  return t;
}

/** Member position for a 32-bit hash. */
export function maglevLookup(table: Int32Array, hash: number): number {
  return table[(hash >>> 0) % table.length]!;
}
