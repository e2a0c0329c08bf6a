// Tunnel MTU, the one place that decides sizes for every tunnel the services originate (SPEC 3
// "Tunnel MTU", the draft's MUST: tunnel MTU discovery; RFC 2473 section 7, RFC 2003 section 5.1,
// RFC 4213 section 3.2). The path MTU per tunnel (slot) and outer family lives in a PmtuCache
// (path-mtu-cache.ts): the front's is shared with its main thread (encap.mtu or the route's MTU,
// lowered by ICMP errors from the fabric, see learn()); a back wrapping return traffic has one
// fixed entry (the route toward its gateway).
// A packet fits when its size on the wire (a GSO super-packet: one segment) plus the outer header
// is at most the path MTU. When it does not:
//   IPv6, > 1280 bytes          -> dropped, ICMPv6 Packet Too Big with the tunnel MTU (>= 1280);
//   IPv6, <= 1280 bytes         -> carried: the OUTER packet is fragmented (the tunnel MTU is below
//                                  1280 only when the path is; an IPv6 source never goes below 1280);
//   IPv4 with DF (or GSO)       -> dropped, ICMP Fragmentation Needed with the tunnel MTU;
//   IPv4 without DF             -> fragmented before encapsulation, each fragment wrapped.
// Every drop counts too_big; fragments are queued in order (the first in place, the rest from aux
// slots). Owns the worker's outer IPv4 ID sequence. Allocation free.
import type { TxQueue } from '../engine/tx-queue.js';
import { PacketInfo } from '../packet/packet-info.js';
import { parsePacket, ParseError } from '../packet/parse.js';
import { encapsulate, OUTER_HDR_LEN4, OUTER_HDR_LEN6 } from '../packet/encap.js';
import { encapsulateUdp, udpOuterLen, UDP_HDR_LEN } from '../packet/udp-encap.js';
import { gsoAddon, type GsoAddon } from '../tun/gso.js';
import { ipv4FragmentCount, ipv4FragmentStep, writeIpv4Fragment } from '../packet/ipv4-fragment.js';
import { ipv6FragmentCount, ipv6FragmentStep, writeIpv6Fragment, FRAG_HDR_LEN } from '../packet/ipv6-fragment.js';
import { dropIndex, eventIndex } from '../metrics/counter-layout.js';
import { IcmpEmitter, ICMP_TOO_BIG } from './icmp-emitter.js';
import { PmtuCache, plateauBelow } from './path-mtu-cache.js';

export const MTU_FIT = 0;
/** Dropped (too_big counted, an ICMP error queued when allowed). */
export const MTU_DROPPED = 1;
/** IPv4 without DF: fragment, then wrap each fragment (wrapFragments). */
export const MTU_FRAG_INNER = 2;
/** IPv6 <= 1280 over a smaller tunnel MTU: wrap, then fragment the outer packet (fragmentOuter). */
export const MTU_FRAG_OUTER = 3;

/** The smallest IPv6 MTU (RFC 8200 section 5). */
export const IPV6_MIN_MTU = 1280;

const D_TOO_BIG = dropIndex('too_big');
const E_FRAGMENTED = eventIndex('fragmented');
const E_PMTU_LEARNED = eventIndex('pmtu_learned');

/**
 * Size of the packet on the wire: the IP total length, or for a GSO super-packet (virtio gso_type
 * set) one segment: hdr_len (L3+L4 headers, recomputed from the packet by the batch loop) + gso_size.
 */
export function wireSize(info: PacketInfo, vnet: Uint8Array, vnetOff: number): number {
  if (vnet.length === 0 || vnet[vnetOff + 1] === 0) return info.totalLen;
  const hdrLen = vnet[vnetOff + 2] | (vnet[vnetOff + 3] << 8);
  const gso = vnet[vnetOff + 4] | (vnet[vnetOff + 5] << 8);
  const seg = hdrLen + gso;
  return gso > 0 && seg < info.totalLen ? seg : info.totalLen;
}

/** Below this many bytes a JS sum of the outer UDP checksum beats the N-API call. */
const NATIVE_SUM_MIN = 512;

export class TunnelMtu {
  /** Set by the processor once per batch. */
  nowMs = 0;
  /**
   * Tunnels are IP-in-UDP to this destination port (udp-encap.ts) when non-zero, IP-in-IP otherwise:
   * every size decided here counts the outer header of the kind in use (8 bytes more for UDP).
   */
  udpPort = 0;
  private g: GsoAddon | undefined;
  /** Path MTU that check() found (used by the fragmenting calls that follow it). */
  private pmtu = 0;
  /** Outer IPv4 ID of the last header written. */
  private ipId = 0;
  private fragId: number;
  private readonly frag = new PacketInfo();

  constructor(
    readonly cache: PmtuCache,
    private readonly icmp: IcmpEmitter,
    private readonly counters: Float64Array,
    seed = 0,
  ) {
    this.fragId = (seed * 0x9e3779b1) >>> 0;
    this.ipId = seed & 0xffff;
  }

  /** Next outer IPv4 ID (one sequence per worker for every outer header it writes). */
  nextIpId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  /** Bytes the outer header of family fam adds: 20/40 (IP-in-IP) or 28/48 (IP-in-UDP). */
  outerLen(fam: number): number {
    if (this.udpPort !== 0) return udpOuterLen(fam);
    return fam === 4 ? OUTER_HDR_LEN4 : OUTER_HDR_LEN6;
  }

  /**
   * Wrap the parsed packet at buf[off] (info.totalLen bytes, complete checksums) in the outer header
   * of the tunnel kind in use; returns the new offset (length info.totalLen + outerLen(fam)). The
   * outer UDP checksum of a big packet is summed natively.
   */
  wrap(buf: Uint8Array, off: number, info: PacketInfo, fam: number, src: Uint32Array, dst: Uint32Array, hopLimit: number): number {
    if (this.udpPort === 0) return encapsulate(buf, off, info, fam, src, dst, hopLimit, this.nextIpId());
    // IP-in-UDP in its own method: a small wrap() leaves room in the callers' inlining budget
    return this.wrapUdp(buf, off, info, fam, src, dst, hopLimit);
  }

  private wrapUdp(buf: Uint8Array, off: number, info: PacketInfo, fam: number, src: Uint32Array, dst: Uint32Array, hopLimit: number): number {
    const big = info.totalLen >= NATIVE_SUM_MIN;
    const o = encapsulateUdp(buf, off, info, fam, src, dst, hopLimit, this.nextIpId(), this.udpPort, big);
    if (big) {
      if (this.g === undefined) this.g = gsoAddon();
      const ip = fam === 4 ? OUTER_HDR_LEN4 : OUTER_HDR_LEN6;
      this.g.completeChecksum(buf, o, info.totalLen + ip + UDP_HDR_LEN, ip, 6);
    }
    return o;
  }

  /** Tunnel MTU toward a back (slot) with an outer header of family fam: path MTU - outer header. */
  tunnelMtu(slot: number, fam: number): number {
    return this.cache.get(slot, fam, this.nowMs) - this.outerLen(fam);
  }

  /**
   * An ICMP Packet Too Big / Fragmentation Needed about one of our tunnel packets toward `slot`
   * (outer family fam) reported `mtu` (IPv4: < 68 when the router gave none, then the RFC 1191
   * plateau below the refused packet's `quotedLen` applies). Lowers the path MTU (counted
   * pmtu_learned) and returns the tunnel MTU in force afterwards.
   */
  learn(slot: number, fam: number, mtu: number, quotedLen: number): number {
    if (fam === 4 && mtu < 68) mtu = plateauBelow(quotedLen);
    if (this.cache.lower(slot, fam, mtu, this.nowMs) > 0) this.counters[E_PMTU_LEARNED]++;
    return this.tunnelMtu(slot, fam);
  }

  /**
   * Relay a learned tunnel MTU to the source of the inner packet quoted at buf[off] (parsed into
   * info; `size` its original length): Packet Too Big (>= 1280) for IPv6 larger than the tunnel MTU,
   * Fragmentation Needed for IPv4 with DF; IPv4 without DF gets none (it is fragmented from now on).
   */
  relay(tx: TxQueue, buf: Uint8Array, off: number, info: PacketInfo, size: number, tmtu: number): void {
    if (info.version === 6) {
      const m = tmtu < IPV6_MIN_MTU ? IPV6_MIN_MTU : tmtu;
      if (size > m) this.icmp.send(tx, buf, off, info, ICMP_TOO_BIG, m, this.nowMs);
    } else if (info.df && size > tmtu) {
      this.icmp.send(tx, buf, off, info, ICMP_TOO_BIG, tmtu, this.nowMs);
    }
  }

  /**
   * Does the parsed packet at buf[off] fit the tunnel toward `slot` with an outer header of family
   * fam? Returns MTU_*; on MTU_DROPPED it counted too_big and queued the ICMP error (the packet is
   * quoted unmodified: call this before touching it).
   */
  check(buf: Uint8Array, off: number, info: PacketInfo, fam: number, slot: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const pmtu = this.cache.get(slot, fam, this.nowMs);
    this.pmtu = pmtu;
    const tmtu = pmtu - this.outerLen(fam);
    const size = wireSize(info, vnet, vnetOff);
    if (size <= tmtu) return MTU_FIT;
    // the rest in its own method: a small check() is inlined into the processors' per-packet code
    return this.notFit(buf, off, info, size, tmtu, vnet, vnetOff, tx);
  }

  /** check() for a packet of `size` on the wire over tunnel MTU tmtu < size. */
  private notFit(buf: Uint8Array, off: number, info: PacketInfo, size: number, tmtu: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const gso = vnet.length > 0 && vnet[vnetOff + 1] !== 0;
    if (info.version === 6) {
      if (size <= IPV6_MIN_MTU && !gso) return MTU_FRAG_OUTER;
      this.icmp.send(tx, buf, off, info, ICMP_TOO_BIG, tmtu < IPV6_MIN_MTU ? IPV6_MIN_MTU : tmtu, this.nowMs);
    } else {
      if (!info.df && !gso) return MTU_FRAG_INNER;
      if (info.df) this.icmp.send(tx, buf, off, info, ICMP_TOO_BIG, tmtu, this.nowMs);
    }
    this.counters[D_TOO_BIG]++;
    return MTU_DROPPED;
  }

  /**
   * MTU_FRAG_INNER: cut the IPv4 packet at buf[off] (parsed into info; complete checksums, no GSO)
   * into fragments that fit the tunnel, wrap each toward dst and queue them in order (fragment 0 in
   * place, the others from aux slots). False (too_big counted) when aux has no room for them.
   */
  wrapFragments(buf: Uint8Array, off: number, info: PacketInfo, fam: number, src: Uint32Array, dst: Uint32Array, hopLimit: number, tx: TxQueue): boolean {
    const aux = tx.aux;
    const hdr = this.outerLen(fam);
    let limit = this.pmtu - hdr;
    const room = aux.slotSize - aux.headroom;
    if (limit > room) limit = room;
    const count = ipv4FragmentCount(info, limit);
    if (count < 2 || count - 1 > aux.free) {
      this.counters[D_TOO_BIG]++;
      return false;
    }
    const step = ipv4FragmentStep(limit, info.hdrLen);
    const f = this.frag;
    // The later fragments first: fragment 0 is written over the original
    const first = aux.used;
    for (let k = 1; k < count; k++) {
      const base = aux.claim() + aux.headroom;
      const n = writeIpv4Fragment(buf, off, info, step, k, aux.buf, base);
      parsePacket(aux.buf, base, n, f, -1); // we wrote it: it parses
      aux.offs[first + k - 1] = this.wrap(aux.buf, base, f, fam, src, dst, hopLimit);
      aux.lens[first + k - 1] = n + hdr;
    }
    const n0 = writeIpv4Fragment(buf, off, info, step, 0, buf, off);
    parsePacket(buf, off, n0, f, -1);
    const o = this.wrap(buf, off, f, fam, src, dst, hopLimit);
    tx.push(buf, o, n0 + hdr);
    for (let k = 0; k < count - 1; k++) tx.push(aux.buf, aux.offs[first + k]!, aux.lens[first + k]!);
    this.counters[E_FRAGMENTED]++;
    return true;
  }

  /**
   * MTU_FRAG_OUTER: the tunnel packet at buf[o] (outerLen bytes, just wrapped, family fam) exceeds
   * the path MTU: fragment it (IPv6: Fragment header; IPv4: DF cleared) and queue the fragments in
   * order (fragment 0 in its slot, the rest from aux). False (too_big counted) when aux is full.
   */
  fragmentOuter(buf: Uint8Array, o: number, outerLen: number, fam: number, tx: TxQueue): boolean {
    const aux = tx.aux;
    let limit = this.pmtu;
    if (limit > aux.slotSize) limit = aux.slotSize;
    const first = aux.used;
    let count: number;
    let n0: number;
    let o0 = o;
    if (fam === 6) {
      const step = ipv6FragmentStep(limit);
      count = ipv6FragmentCount(outerLen, step);
      if (count < 1 || count - 1 > aux.free) {
        this.counters[D_TOO_BIG]++;
        return false;
      }
      this.fragId = (this.fragId + 1) >>> 0;
      for (let k = 1; k < count; k++) {
        const base = aux.claim();
        aux.offs[first + k - 1] = base;
        aux.lens[first + k - 1] = writeIpv6Fragment(buf, o, outerLen, step, k, this.fragId, aux.buf, base);
      }
      // fragment 0 in place, 8 bytes earlier (the headroom holds them): its payload does not move
      o0 = o - FRAG_HDR_LEN;
      n0 = writeIpv6Fragment(buf, o, outerLen, step, 0, this.fragId, buf, o0);
    } else {
      const f = this.frag;
      if (parsePacket(buf, o, outerLen, f, -1) !== ParseError.OK) {
        this.counters[D_TOO_BIG]++;
        return false;
      }
      f.df = false;
      count = ipv4FragmentCount(f, limit);
      if (count < 1 || count - 1 > aux.free) {
        this.counters[D_TOO_BIG]++;
        return false;
      }
      const step = ipv4FragmentStep(limit, f.hdrLen);
      for (let k = 1; k < count; k++) {
        const base = aux.claim();
        aux.offs[first + k - 1] = base;
        aux.lens[first + k - 1] = writeIpv4Fragment(buf, o, f, step, k, aux.buf, base);
      }
      n0 = writeIpv4Fragment(buf, o, f, step, 0, buf, o);
    }
    tx.push(buf, o0, n0);
    for (let k = 0; k < count - 1; k++) tx.push(aux.buf, aux.offs[first + k]!, aux.lens[first + k]!);
    this.counters[E_FRAGMENTED]++;
    return true;
  }
}
