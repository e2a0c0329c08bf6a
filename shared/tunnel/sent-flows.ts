// Which inner flows a service recently sent into which tunnel, so that an ICMP error from the fabric
// can be checked against it (SPEC 3 "Tunnel MTU", RFC 5927 section 4): an error quoting (S -> B,
// protocol 41) with an inner flow we never sent to B is forged, and must not shrink that tunnel.
// Bounded, allocation-free and approximate: two generations of a Bloom filter (two bits per flow)
// over (tunnel slot, inner addresses, first protocol, ports). mark() sets the bits in the current
// generation; every SENT_FLOWS_PERIOD_MS the older generation is cleared and becomes the current
// one, so a flow counts as sent when a packet of it went out in the last 1-2 periods. The hash is
// keyed by a per-worker random seed: a sender cannot pick flows that collide with real ones. False
// positives grow with the flows sent per period (1M bits, 100k flows a period: about 3 % per
// generation, 6 % for the two): this lowers the
// odds of a blind forgery, it cannot stop an attacker who sees the traffic.
// Both sides key on the quoted bytes as they are, not on the parsed packet: the protocol is the one
// in the fixed header (an IPv6 extension header leaves ports 0 on both sides), ports only from an
// unfragmented or first-fragment TCP/UDP header, so the sender and the quote always agree.
import { fmix32, mixWords } from '../packet/hash32.js';

/** A generation lasts this long: a flow is "recent" for 10 to 20 s after its last packet. */
export const SENT_FLOWS_PERIOD_MS = 10_000;
/** Bits per generation (power of two): 128 KiB each. */
const BITS = 1 << 20;
const KEY_WORDS = 10;
const TCP = 6;
const UDP = 17;

export class SentFlows {
  private cur = new Uint32Array(BITS >>> 5);
  private prev = new Uint32Array(BITS >>> 5);
  private readonly key = new Uint32Array(KEY_WORDS);
  private rotateAt: number;
  /** Periods begun so far (1 = the first): part of stamp(). */
  private generation = 1;
  private h1 = 0;
  private h2 = 0;

  constructor(
    private readonly seed: number,
    nowMs: number,
  ) {
    this.rotateAt = nowMs + SENT_FLOWS_PERIOD_MS;
  }

  /** The inner packet at buf[off] (avail bytes there) went into tunnel `slot`. */
  mark(slot: number, buf: Uint8Array, off: number, avail: number, nowMs: number): void {
    if (!this.hash(slot, buf, off, avail)) return;
    this.age(nowMs);
    const c = this.cur, a = this.h1, b = this.h2;
    c[a >>> 5] |= 1 << (a & 31);
    c[b >>> 5] |= 1 << (b & 31);
  }

  /**
   * A number that is the same for two packets of one flow (same addresses, transport protocol and
   * ports) exactly when mark() of the second would set the bits the first one set: same tunnel, same
   * protocol in the fixed header (an extension header leaves the ports out of the key), same
   * generation. A caller that remembers it per flow skips the keyed hash for the flow's later
   * packets. For whole packets (not fragments) at buf[off], at least a fixed header long.
   */
  stamp(slot: number, buf: Uint8Array, off: number, nowMs: number): number {
    if (nowMs >= this.rotateAt) this.age(nowMs); // the test here: age() stays out of the callers' inlined code
    const proto = buf[off]! >> 4 === 4 ? buf[off + 9]! : buf[off + 6]!;
    return this.generation * 0x1000000 + (slot & 0xffff) * 256 + proto;
  }

  /** A packet of the (possibly truncated) inner packet quoted at buf[off] went into `slot` recently. */
  seen(slot: number, buf: Uint8Array, off: number, avail: number, nowMs: number): boolean {
    if (!this.hash(slot, buf, off, avail)) return false;
    this.age(nowMs);
    const a = this.h1, b = this.h2;
    return (
      ((this.cur[a >>> 5]! >>> (a & 31)) & (this.cur[b >>> 5]! >>> (b & 31)) & 1) !== 0 ||
      ((this.prev[a >>> 5]! >>> (a & 31)) & (this.prev[b >>> 5]! >>> (b & 31)) & 1) !== 0
    );
  }

  private age(nowMs: number): void {
    if (nowMs < this.rotateAt) return;
    // a clock that jumped over two periods leaves nothing recent
    const keep = nowMs < this.rotateAt + SENT_FLOWS_PERIOD_MS;
    const old = this.prev;
    this.prev = this.cur;
    this.cur = old;
    old.fill(0);
    if (!keep) this.prev.fill(0);
    this.rotateAt = nowMs + SENT_FLOWS_PERIOD_MS;
    this.generation += keep ? 1 : 2;
  }

  /** Key of the inner packet into h1/h2 (bit indices); false when too little of it is there. */
  private hash(slot: number, buf: Uint8Array, p: number, avail: number): boolean {
    if (avail < 1) return false;
    const k = this.key;
    const v = buf[p]! >> 4;
    let proto: number;
    let l4: number;
    if (v === 4) {
      if (avail < 20) return false;
      proto = buf[p + 9]!;
      const fragOff = ((buf[p + 6]! & 0x1f) << 8) | buf[p + 7]!;
      l4 = fragOff === 0 ? (buf[p]! & 15) * 4 : -1;
      k[1] = get32(buf, p + 12);
      k[2] = get32(buf, p + 16);
    } else if (v === 6) {
      if (avail < 40) return false;
      proto = buf[p + 6]!;
      l4 = 40;
      for (let i = 0; i < 4; i++) {
        k[1 + i] = get32(buf, p + 8 + 4 * i);
        k[5 + i] = get32(buf, p + 24 + 4 * i);
      }
    } else {
      return false;
    }
    k[0] = ((slot & 0xffff) << 16) | (v << 8) | proto;
    // key words: IPv4 [tag, src, dst, ports] (4 words: half the hashing of IPv6), IPv6 [tag, src x4, dst x4, ports]
    const n = v === 4 ? 4 : KEY_WORDS;
    let ports = 0;
    if ((proto === TCP || proto === UDP) && l4 >= 0) {
      if (avail < l4 + 4) return false; // ports not quoted: cannot tell the flow
      ports = get32(buf, p + l4);
    }
    k[n - 1] = ports;
    const h = fmix32(mixWords(this.seed, k, n) ^ n);
    this.h1 = h & (BITS - 1);
    this.h2 = fmix32(h ^ 0x5bd1e995) & (BITS - 1);
    return true;
  }
}

function get32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}
