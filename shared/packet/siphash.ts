// SipHash (Aumasson & Bernstein, 2012) with 64-bit lanes emulated as (hi, lo) pairs of 32-bit
// integers: no BigInt, no allocation, so the front can key every hash that chooses a back with a
// secret 128-bit key (whoever does not know it cannot pick sources or flow labels that all land on
// one back). SipHash-1-3 is the hot-path variant (as CPython's and Rust's hashers); the round
// counts are parameters of `sipHashBytes` only so the reference SipHash-2-4 vectors can check the
// same code. The word functions hash their 32-bit words as little-endian bytes, 4 per word, and
// return the low 32 bits of the 64-bit result.
//
// Key layout: a Uint32Array(4) of the 16 key bytes read little-endian: [k0 lo, k0 hi, k1 lo, k1 hi].

// Byte-string variant (off the hot path: vectors, member names): lanes as module state.
let v0h = 0, v0l = 0, v1h = 0, v1l = 0, v2h = 0, v2l = 0, v3h = 0, v3l = 0;

function init(k: Uint32Array): void {
  const k0l = k[0]!, k0h = k[1]!, k1l = k[2]!, k1h = k[3]!;
  v0h = k0h ^ 0x736f6d65; v0l = k0l ^ 0x70736575;
  v1h = k1h ^ 0x646f7261; v1l = k1l ^ 0x6e646f6d;
  v2h = k0h ^ 0x6c796765; v2l = k0l ^ 0x6e657261;
  v3h = k1h ^ 0x74656462; v3l = k1l ^ 0x79746573;
}

function round(): void {
  let lo: number, h: number, l: number;
  // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
  lo = (v0l >>> 0) + (v1l >>> 0); v0h = (v0h + v1h + (lo > 0xffffffff ? 1 : 0)) | 0; v0l = lo | 0;
  h = (v1h << 13) | (v1l >>> 19); l = (v1l << 13) | (v1h >>> 19); v1h = h ^ v0h; v1l = l ^ v0l;
  h = v0h; v0h = v0l; v0l = h;
  // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
  lo = (v2l >>> 0) + (v3l >>> 0); v2h = (v2h + v3h + (lo > 0xffffffff ? 1 : 0)) | 0; v2l = lo | 0;
  h = (v3h << 16) | (v3l >>> 16); l = (v3l << 16) | (v3h >>> 16); v3h = h ^ v2h; v3l = l ^ v2l;
  // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
  lo = (v0l >>> 0) + (v3l >>> 0); v0h = (v0h + v3h + (lo > 0xffffffff ? 1 : 0)) | 0; v0l = lo | 0;
  h = (v3h << 21) | (v3l >>> 11); l = (v3l << 21) | (v3h >>> 11); v3h = h ^ v0h; v3l = l ^ v0l;
  // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
  lo = (v2l >>> 0) + (v1l >>> 0); v2h = (v2h + v1h + (lo > 0xffffffff ? 1 : 0)) | 0; v2l = lo | 0;
  h = (v1h << 17) | (v1l >>> 15); l = (v1l << 17) | (v1h >>> 15); v1h = h ^ v2h; v1l = l ^ v2l;
  h = v2h; v2h = v2l; v2l = h;
}

/** Message blocks of the word functions as (lo, hi) int32 pairs, the last one holding the length. */
const M = new Int32Array(6);

/**
 * SipHash-1-3 over the first `nw` words of M (whole 8-byte blocks), low 32 bits. The lanes are
 * locals, so optimised code keeps them in registers as int32: module or object state would box
 * every lane value beyond the small-integer range into a heap number on each store (an allocation
 * per hash, and many times slower). The 64-bit add's carry is an int32 compare, not a float sum.
 */
function sipBlocks(k: Uint32Array, nw: number): number {
  const k0l = k[0]! | 0, k0h = k[1]! | 0, k1l = k[2]! | 0, k1h = k[3]! | 0;
  let v0h = k0h ^ 0x736f6d65, v0l = k0l ^ 0x70736575;
  let v1h = k1h ^ 0x646f7261, v1l = k1l ^ 0x6e646f6d;
  let v2h = k0h ^ 0x6c796765, v2l = k0l ^ 0x6e657261;
  let v3h = k1h ^ 0x74656462, v3l = k1l ^ 0x79746573;
  let t = 0, h = 0, l = 0;
  for (let i = 0; i < nw; i += 2) {
    const ml = M[i]!, mh = M[i + 1]!;
    v3h ^= mh; v3l ^= ml;
    t = (v0l + v1l) | 0; v0h = (v0h + v1h + ((t >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0; v0l = t;
    h = (v1h << 13) | (v1l >>> 19); l = (v1l << 13) | (v1h >>> 19); v1h = h ^ v0h; v1l = l ^ v0l;
    h = v0h; v0h = v0l; v0l = h;
    t = (v2l + v3l) | 0; v2h = (v2h + v3h + ((t >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0; v2l = t;
    h = (v3h << 16) | (v3l >>> 16); l = (v3l << 16) | (v3h >>> 16); v3h = h ^ v2h; v3l = l ^ v2l;
    t = (v0l + v3l) | 0; v0h = (v0h + v3h + ((t >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0; v0l = t;
    h = (v3h << 21) | (v3l >>> 11); l = (v3l << 21) | (v3h >>> 11); v3h = h ^ v0h; v3l = l ^ v0l;
    t = (v2l + v1l) | 0; v2h = (v2h + v1h + ((t >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0; v2l = t;
    h = (v1h << 17) | (v1l >>> 15); l = (v1l << 17) | (v1h >>> 15); v1h = h ^ v2h; v1l = l ^ v2l;
    h = v2h; v2h = v2l; v2l = h;
    v0h ^= mh; v0l ^= ml;
  }
  v2l ^= 0xff;
  for (let i = 0; i < 3; i++) {
    t = (v0l + v1l) | 0; v0h = (v0h + v1h + ((t >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0; v0l = t;
    h = (v1h << 13) | (v1l >>> 19); l = (v1l << 13) | (v1h >>> 19); v1h = h ^ v0h; v1l = l ^ v0l;
    h = v0h; v0h = v0l; v0l = h;
    t = (v2l + v3l) | 0; v2h = (v2h + v3h + ((t >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0; v2l = t;
    h = (v3h << 16) | (v3l >>> 16); l = (v3l << 16) | (v3h >>> 16); v3h = h ^ v2h; v3l = l ^ v2l;
    t = (v0l + v3l) | 0; v0h = (v0h + v3h + ((t >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0; v0l = t;
    h = (v3h << 21) | (v3l >>> 11); l = (v3l << 21) | (v3h >>> 11); v3h = h ^ v0h; v3l = l ^ v0l;
    t = (v2l + v1l) | 0; v2h = (v2h + v1h + ((t >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0; v2l = t;
    h = (v1h << 17) | (v1l >>> 15); l = (v1l << 17) | (v1h >>> 15); v1h = h ^ v2h; v1l = l ^ v2l;
    h = v2h; v2h = v2l; v2l = h;
  }
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

/** SipHash-1-3 of one 32-bit word (4 bytes). */
export function sip1(k: Uint32Array, a: number): number {
  M[0] = a; M[1] = 4 << 24;
  return sipBlocks(k, 2);
}

/** SipHash-1-3 of two words (8 bytes). */
export function sip2(k: Uint32Array, a: number, b: number): number {
  M[0] = a; M[1] = b; M[2] = 0; M[3] = 8 << 24;
  return sipBlocks(k, 4);
}

/** SipHash-1-3 of four words (16 bytes: an IPv6 address). */
export function sip4(k: Uint32Array, a: number, b: number, c: number, d: number): number {
  M[0] = a; M[1] = b; M[2] = c; M[3] = d; M[4] = 0; M[5] = 16 << 24;
  return sipBlocks(k, 6);
}

/** SipHash-1-3 of five words (20 bytes: an IPv6 address and a flow label). */
export function sip5(k: Uint32Array, a: number, b: number, c: number, d: number, e: number): number {
  M[0] = a; M[1] = b; M[2] = c; M[3] = d; M[4] = e; M[5] = 20 << 24;
  return sipBlocks(k, 6);
}

/**
 * SipHash-c-d of a byte string, the full 64-bit result as [lo, hi] in `out` (off the hot path:
 * test vectors, member names). Returns `out`.
 */
export function sipHashBytes(k: Uint32Array, msg: Uint8Array, out: Uint32Array, c = 1, d = 3): Uint32Array {
  init(k);
  const n = msg.length;
  const full = n - (n % 8);
  const le32 = (i: number) => (msg[i]! | (msg[i + 1]! << 8) | (msg[i + 2]! << 16) | (msg[i + 3]! << 24)) | 0;
  const absorb = (mh: number, ml: number) => {
    v3h ^= mh; v3l ^= ml;
    for (let r = 0; r < c; r++) round();
    v0h ^= mh; v0l ^= ml;
  };
  for (let i = 0; i < full; i += 8) absorb(le32(i + 4), le32(i));
  const tail = new Uint8Array(8);
  tail.set(msg.subarray(full));
  tail[7] = n & 0xff;
  absorb((tail[4]! | (tail[5]! << 8) | (tail[6]! << 16) | (tail[7]! << 24)) | 0, (tail[0]! | (tail[1]! << 8) | (tail[2]! << 16) | (tail[3]! << 24)) | 0);
  v2l ^= 0xff;
  for (let r = 0; r < d; r++) round();
  out[0] = v0l ^ v1l ^ v2l ^ v3l;
  out[1] = v0h ^ v1h ^ v2h ^ v3h;
  return out;
}

/** SipHash-1-3 of a string's UTF-8 bytes, low 32 bits (Maglev member permutations). */
export function sipString(k: Uint32Array, s: string): number {
  return sipHashBytes(k, new TextEncoder().encode(s), new Uint32Array(2))[0]!;
}

/** The 16 key bytes as the key words the functions above take. */
export function sipKey(bytes: Uint8Array): Uint32Array {
  if (bytes.length !== 16) throw new Error(`a SipHash key is 16 bytes, got ${bytes.length}`);
  const k = new Uint32Array(4);
  for (let i = 0; i < 4; i++) k[i] = bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24);
  return k;
}
