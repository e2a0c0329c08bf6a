// Address and prefix text <-> 32-bit words, the one parser everyone uses.
// Off the hot path (config and table load, CLI); the data path only sees the words.
// IPv4: word 0 holds the address (big-endian value as an unsigned number), words 1-3 are 0.
// IPv6: four words, most significant first.

export type Family = 4 | 6;

export interface ParsedAddress {
  family: Family;
  words: Uint32Array; // always length 4
}

export interface ParsedPrefix {
  family: Family;
  words: Uint32Array; // network address (host bits as written; see hostBitsSet)
  len: number;
  hostBitsSet: boolean;
}

function parseV4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) return -1;
  let v = 0;
  for (const p of parts) {
    // Reject leading zeros (octal ambiguity), signs, empty parts.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return -1;
    const n = Number(p);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v;
}

function parseV6(s: string, out: Uint32Array): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups: number[] = [];
  const parseSide = (side: string, allowV4Tail: boolean): number[] | null => {
    if (side === '') return [];
    const items = side.split(':');
    const res: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (allowV4Tail && i === items.length - 1 && it.includes('.')) {
        const v4 = parseV4(it);
        if (v4 < 0) return null;
        res.push(v4 >>> 16, v4 & 0xffff);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return null;
      res.push(parseInt(it, 16));
    }
    return res;
  };
  if (halves.length === 1) {
    const g = parseSide(halves[0]!, true);
    if (!g || g.length !== 8) return false;
    groups.push(...g);
  } else {
    const a = parseSide(halves[0]!, false);
    const b = parseSide(halves[1]!, true);
    if (!a || !b || a.length + b.length > 7) return false;
    groups.push(...a);
    for (let i = a.length + b.length; i < 8; i++) groups.push(0);
    groups.push(...b);
  }
  for (let i = 0; i < 4; i++) out[i] = ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  return true;
}

/** Parse an IPv4 or IPv6 address; null when it is neither. */
export function parseAddress(text: unknown): ParsedAddress | null {
  if (typeof text !== 'string') return null;
  const s = text.trim();
  const words = new Uint32Array(4);
  if (s.includes(':')) {
    if (s.includes('%')) return null; // zone ids have no meaning in a table
    return parseV6(s, words) ? { family: 6, words } : null;
  }
  const v4 = parseV4(s);
  if (v4 < 0) return null;
  words[0] = v4;
  return { family: 4, words };
}

/** Mask of the top `bits` bits of a 32-bit word (bits in 0..32). */
export function wordMask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** Parse `addr/len`; a bare address is a host prefix (/32 or /128). */
export function parsePrefix(text: unknown): ParsedPrefix | null {
  if (typeof text !== 'string') return null;
  const s = text.trim();
  const slash = s.indexOf('/');
  const a = parseAddress(slash < 0 ? s : s.slice(0, slash));
  if (!a) return null;
  const max = a.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const l = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(l)) return null;
    len = Number(l);
    if (len > max) return null;
  }
  let hostBitsSet = false;
  const nw = a.family === 4 ? 1 : 4;
  for (let i = 0; i < nw; i++) {
    const m = wordMask(len - 32 * i);
    if ((a.words[i]! & ~m) >>> 0 !== 0) hostBitsSet = true;
  }
  return { family: a.family, words: a.words, len, hostBitsSet };
}

export function formatV4(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

/** RFC 5952 text of four words (longest zero run compressed, IPv4-mapped shown dotted). */
export function formatV6(w: ArrayLike<number>): string {
  const g: number[] = [];
  for (let i = 0; i < 4; i++) g.push(w[i]! >>> 16, w[i]! & 0xffff);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatV4(w[3]! >>> 0)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function formatAddress(family: Family, words: ArrayLike<number>): string {
  return family === 4 ? formatV4(words[0]! >>> 0) : formatV6(words);
}

export function formatPrefix(family: Family, words: ArrayLike<number>, len: number): string {
  return `${formatAddress(family, words)}/${len}`;
}

/** True when four words are an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export function isV4Mapped(w0: number, w1: number, w2: number): boolean {
  return w0 === 0 && w1 === 0 && w2 === 0xffff;
}

/**
 * Why an address cannot be a service or a back (null when it can): unspecified, loopback and
 * multicast addresses are never unicast destinations a balancer may take over or forward to.
 */
export function unusableAddressReason(family: Family, words: ArrayLike<number>): string | null {
  const w0 = words[0]! >>> 0;
  if (family === 4) {
    if (w0 === 0) return 'the unspecified address (0.0.0.0)';
    if (w0 >>> 24 === 127) return 'a loopback address (127.0.0.0/8)';
    if (w0 >>> 28 === 0xe) return 'a multicast address (224.0.0.0/4)';
    return null;
  }
  const w1 = words[1]! >>> 0, w2 = words[2]! >>> 0, w3 = words[3]! >>> 0;
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0) return 'the unspecified address (::)';
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 1) return 'the loopback address (::1)';
  if (w0 >>> 24 === 0xff) return 'a multicast address (ff00::/8)';
  return null;
}
