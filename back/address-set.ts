// A small fixed set of addresses (services, a back's own addresses) searched linearly: these sets
// hold a handful of entries, where a scan over one typed array beats any hashing.

export class AddressSet {
  readonly size: number;
  private readonly fam: Uint8Array;
  private readonly w: Uint32Array;

  constructor(entries: readonly { family: 4 | 6; words: ArrayLike<number> }[]) {
    this.size = entries.length;
    this.fam = new Uint8Array(entries.length);
    this.w = new Uint32Array(entries.length * 4);
    entries.forEach((e, i) => {
      this.fam[i] = e.family;
      for (let k = 0; k < 4; k++) this.w[i * 4 + k] = e.words[k] ?? 0;
    });
  }

  /** Index of the address (family 4: word 0 only), or -1. */
  find(family: number, a: Uint32Array): number {
    const w = this.w;
    const f = this.fam;
    for (let i = 0; i < this.size; i++) {
      if (f[i] !== family) continue;
      const b = i * 4;
      if (w[b] !== a[0]) continue;
      if (family === 4 || (w[b + 1] === a[1] && w[b + 2] === a[2] && w[b + 3] === a[3])) return i;
    }
    return -1;
  }

  /** Copy entry i's words into out (4 words). */
  wordsOf(i: number, out: Uint32Array): void {
    for (let k = 0; k < 4; k++) out[k] = this.w[i * 4 + k];
  }

  familyOf(i: number): number {
    return this.fam[i];
  }
}
