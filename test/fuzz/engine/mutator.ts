// Byte-level mutations in the manner of libFuzzer's MutationDispatcher, driven by a seeded PRNG so
// that a run is reproducible from its seed: bit flips, random and "interesting" bytes and words
// (big- and little-endian: packets are big-endian, the virtio header is not), small additions,
// constants taken from the code under test (its dictionary), erasing, inserting, duplicating and
// swapping chunks, and splicing with another corpus input. One mutation applies 1-5 of them.
const INTERESTING8 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x40, 0x20, 0x10, 0x08, 0x06, 0x11, 0x29, 0x2c, 0x3a, 0x3b, 0x3c, 0x04];
const INTERESTING16 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x0100, 0x0500, 0x05dc, 0x0578, 0x2000, 0x3fff, 0x4000, 0x1fff];
const INTERESTING32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x20010db8];

export class Mutator {
  private readonly dict: number[];

  constructor(
    private readonly rand: () => number,
    dictionary: readonly number[],
    readonly maxLen: number,
  ) {
    this.dict = [...dictionary];
  }

  private below(n: number): number {
    return n <= 1 ? 0 : this.rand() % n;
  }

  /**
   * Writes a mutation of src into out (out.length >= maxLen) and returns its length (>= 1).
   * `other` gives another corpus input for splicing (or null when there is none).
   */
  mutate(src: Uint8Array, out: Uint8Array, other: () => Uint8Array | null): number {
    let len = Math.min(src.length, this.maxLen);
    out.set(src.subarray(0, len));
    if (len === 0) {
      out[0] = this.rand() & 0xff;
      len = 1;
    }
    const steps = 1 + this.below(5);
    for (let s = 0; s < steps; s++) len = this.step(out, len, other);
    return len;
  }

  /** A random input of 1..maxLen bytes (no feedback, no corpus: the baseline guidance is measured against). */
  random(out: Uint8Array): number {
    // short lengths as often as long ones: most packet paths are decided in the first 100 bytes
    const len = 1 + this.below(this.rand() & 1 ? 128 : this.maxLen);
    for (let i = 0; i < len; i++) out[i] = this.rand() & 0xff;
    return len;
  }

  private step(b: Uint8Array, len: number, other: () => Uint8Array | null): number {
    const pos = this.below(len);
    switch (this.below(14)) {
      case 0: // flip a bit
        b[pos] ^= 1 << this.below(8);
        return len;
      case 1: // random byte
        b[pos] = this.rand() & 0xff;
        return len;
      case 2: // add or subtract a little
        b[pos] = (b[pos] + (this.below(2) ? 1 : -1) * (1 + this.below(8))) & 0xff;
        return len;
      case 3: // interesting byte
        b[pos] = INTERESTING8[this.below(INTERESTING8.length)];
        return len;
      case 4: // interesting 16-bit word
        return this.putWord(b, len, pos, INTERESTING16[this.below(INTERESTING16.length)], 2);
      case 5: // interesting 32-bit word
        return this.putWord(b, len, pos, INTERESTING32[this.below(INTERESTING32.length)], 4);
      case 6: { // add to a 16-bit big-endian word (lengths, ports, offsets)
        if (pos + 2 > len) return len;
        const v = ((b[pos] << 8) | b[pos + 1]) + (this.below(2) ? 1 : -1) * (1 + this.below(64));
        b[pos] = (v >> 8) & 0xff;
        b[pos + 1] = v & 0xff;
        return len;
      }
      case 7: { // a constant of the code under test
        if (this.dict.length === 0) return len;
        const v = this.dict[this.below(this.dict.length)];
        return this.putWord(b, len, pos, v, v > 0xffff ? 4 : v > 0xff ? 2 : 1);
      }
      case 8: { // erase a chunk
        if (len <= 1) return len;
        const n = 1 + this.below(Math.min(len - 1, 16));
        b.copyWithin(pos, Math.min(pos + n, len), len);
        return len - Math.min(n, len - pos) || 1;
      }
      case 9: { // insert random bytes
        const n = Math.min(1 + this.below(8), this.maxLen - len);
        if (n <= 0) return len;
        b.copyWithin(pos + n, pos, len);
        for (let i = 0; i < n; i++) b[pos + i] = this.rand() & 0xff;
        return len + n;
      }
      case 10: { // copy a chunk of itself over another place
        const from = this.below(len);
        const n = 1 + this.below(Math.min(len - from, len - pos, 32));
        b.copyWithin(pos, from, from + n);
        return len;
      }
      case 11: { // insert a copy of a chunk of itself (repeated headers, options)
        const from = this.below(len);
        const n = Math.min(1 + this.below(Math.min(len - from, 64)), this.maxLen - len);
        if (n <= 0) return len;
        const chunk = b.slice(from, from + n);
        b.copyWithin(pos + n, pos, len);
        b.set(chunk, pos);
        return len + n;
      }
      case 12: { // splice: keep a prefix, take the rest from another input
        const o = other();
        if (o === null || o.length === 0) return len;
        const at = this.below(o.length);
        const n = Math.min(o.length - at, this.maxLen - pos);
        b.set(o.subarray(at, at + n), pos);
        return Math.max(1, pos + n);
      }
      default: { // truncate or extend
        if (this.below(2) && len > 1) return 1 + this.below(len - 1);
        const n = Math.min(1 + this.below(64), this.maxLen - len);
        for (let i = 0; i < n; i++) b[len + i] = this.rand() & 0xff;
        return len + Math.max(n, 0);
      }
    }
  }

  private putWord(b: Uint8Array, len: number, pos: number, v: number, size: number): number {
    if (pos + size > len) return len;
    const little = size > 1 && this.below(4) === 0;
    for (let i = 0; i < size; i++) {
      const byte = (v >>> (8 * (size - 1 - i))) & 0xff;
      b[little ? pos + size - 1 - i : pos + i] = byte;
    }
    return len;
  }
}
