// The project's one 32-bit hash (murmur3-style mixing over uint32 words). The key hashes below make
// fronts configured alike pick the same pool member for the same key; the flow table, the back's
// client-segment cache and the RFC 6438 outer flow label build on the same steps. Pure integer
// math: deterministic across processes and machines, allocation-free. Changing it moves every
// hashed key and outer label: don't.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/** murmur3 body step: mix one 32-bit word k into the running hash h (int32 in, int32 out). */
export function mix32(h: number, k: number): number {
  // mixK's steps written out: one call level less where a per-packet hash (the outer flow
  // label) calls this ten times
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, C2);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** mix32 over the first n words of a key (a table's scratch key); finish with a finaliser. */
export function mixWords(h: number, words: Uint32Array, n: number): number {
  // mix32's steps written out: a call-free loop leaves the inliner budget of the flow table's
  // per-packet callers (lookup) for their own callees
  for (let i = 0; i < n; i++) {
    let k = Math.imul(words[i]!, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return h;
}

/**
 * First half of the murmur3 finaliser (one multiply), unsigned. Enough to spread a hash over the
 * slots of a direct-mapped cache whose seed is random per process; fmix32 is it plus the second half.
 */
export function fmix32Half(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** murmur3 finaliser: full avalanche of a 32-bit value, unsigned. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of one word (e.g. a flow label or an IPv4 address). */
export function hash1(seed: number, a: number): number {
  return fmix32(mix32(seed | 0, a) ^ 4);
}

/** Hash of two words (IPv4 address + flow label). */
export function hash2(seed: number, a: number, b: number): number {
  return fmix32(mix32(mix32(seed | 0, a), b) ^ 8);
}

/** Hash of four words (an IPv6 address). */
export function hash4(seed: number, a: number, b: number, c: number, d: number): number {
  return fmix32(mix32(mix32(mix32(mix32(seed | 0, a), b), c), d) ^ 16);
}

/** Hash of five words (IPv6 address + flow label). */
export function hash5(seed: number, a: number, b: number, c: number, d: number, e: number): number {
  return fmix32(mix32(mix32(mix32(mix32(mix32(seed | 0, a), b), c), d), e) ^ 20);
}

/** Hash of a string's UTF-16 code units (member names; off the hot path). */
export function hashString(seed: number, s: string): number {
  let h = seed | 0;
  let i = 0;
  for (; i + 1 < s.length; i += 2) h = mix32(h, (s.charCodeAt(i) << 16) | s.charCodeAt(i + 1));
  if (i < s.length) h ^= mixK(s.charCodeAt(i));
  return fmix32(h ^ s.length);
}

/** Seeds fixed once for the whole project. */
export const KEY_SEED = 0x6d736c62; // "mslb"
