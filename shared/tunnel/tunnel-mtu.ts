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
//   IPv4 with DF                -> dropped, ICMP Fragmentation Needed with the tunnel MTU;
//   IPv4 without DF             -> fragmented before encapsulation, each fragment wrapped.
// A GSO super-packet is cut into its wire segments first (tunnel-offload.ts) and each segment that
// does not fit is handled as above like a packet of its size (fragmentSegment).
// Every drop counts too_big; fragments are queued in order (the first in place, the rest from aux
// slots, or for segments from the segment slab). Owns the worker's outer IPv4 ID sequence.
// Allocation free.
import type { TxQueue } from '../engine/tx-queue.js';
import type { SegmentSlab } from '../engine/segment-slab.js';
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
  /** Payload bytes per fragment, from outerPlan() to outerFragments(). */
  private step = 0;

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

  /**
   * Wrap the GSO super-packet at buf[off] (info.totalLen bytes, `segs` wire segments) in outer IP +
   * UDP headers for the kernel to segment (UDP_TUNNEL_CSUM): the UDP checksum field holds the folded
   * pseudo-header sum of the whole datagram, the IPv4 ID the first segment's; the kernel numbers the
   * others on, so the worker's sequence moves past all of them. Returns the new offset.
   */
  wrapUdpGso(buf: Uint8Array, off: number, info: PacketInfo, fam: number, src: Uint32Array, dst: Uint32Array, hopLimit: number, segs: number): number {
    const id = this.nextIpId();
    this.ipId = (this.ipId + segs - 1) & 0xffff;
    return encapsulateUdp(buf, off, info, fam, src, dst, hopLimit, id, this.udpPort, true);
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
   * quoted unmodified: call this before touching it). A GSO super-packet is judged by one segment:
   * MTU_FRAG_* then means its segments are cut first and each one is fragmented (fragmentSegment).
   */
  check(buf: Uint8Array, off: number, info: PacketInfo, fam: number, slot: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const pmtu = this.cache.get(slot, fam, this.nowMs);
    this.pmtu = pmtu;
    const tmtu = pmtu - this.outerLen(fam);
    const size = wireSize(info, vnet, vnetOff);
    if (size <= tmtu) return MTU_FIT;
    // the rest in its own method: a small check() is inlined into the processors' per-packet code
    return this.notFit(buf, off, info, size, tmtu, tx);
  }

  /** check() for a packet of `size` on the wire over tunnel MTU tmtu < size. */
  private notFit(buf: Uint8Array, off: number, info: PacketInfo, size: number, tmtu: number, tx: TxQueue): number {
    if (info.version === 6) {
      if (size <= IPV6_MIN_MTU) return MTU_FRAG_OUTER;
      this.icmp.send(tx, buf, off, info, ICMP_TOO_BIG, tmtu < IPV6_MIN_MTU ? IPV6_MIN_MTU : tmtu, this.nowMs);
    } else {
      if (!info.df) return MTU_FRAG_INNER;
      this.icmp.send(tx, buf, off, info, ICMP_TOO_BIG, tmtu, this.nowMs);
    }
    this.counters[D_TOO_BIG]++;
    return MTU_DROPPED;
  }

  /** Path MTU the last check() found. */
  get checkedMtu(): number {
    return this.pmtu;
  }

  /**
   * MTU_FRAG_INNER: cut the IPv4 packet at buf[off] (parsed into info; complete checksums, no GSO)
   * into fragments that fit the tunnel, wrap each toward dst and queue them in order (fragment 0 in
   * place, the others from aux slots). False (too_big counted) when aux has no room for them.
   */
  wrapFragments(buf: Uint8Array, off: number, info: PacketInfo, fam: number, src: Uint32Array, dst: Uint32Array, hopLimit: number, tx: TxQueue): boolean {
    const aux = tx.aux;
    let limit = this.pmtu - this.outerLen(fam);
    const room = aux.slotSize - aux.headroom;
    if (limit > room) limit = room;
    const count = ipv4FragmentCount(info, limit);
    if (count < 2 || count - 1 > aux.free) {
      this.counters[D_TOO_BIG]++;
      return false;
    }
    this.innerFragments(buf, off, info, fam, src, dst, hopLimit, tx, ipv4FragmentStep(limit, info.hdrLen), count, aux.buf, aux.used * aux.slotSize + aux.headroom, aux.slotSize);
    aux.used += count - 1;
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
    const count = this.outerPlan(buf, o, outerLen, fam, limit);
    if (count < 1 || count - 1 > aux.free) {
      this.counters[D_TOO_BIG]++;
      return false;
    }
    this.outerFragments(buf, o, outerLen, fam, tx, count, aux.buf, aux.used * aux.slotSize, aux.slotSize);
    aux.used += count - 1;
    return true;
  }

  /** Slot size (bytes, headroom included) of the fragments segmentFragments() planned. */
  fragSlot = 0;

  /**
   * A GSO super-packet check() sent to MTU_FRAG_INNER / MTU_FRAG_OUTER: how many fragments one full
   * segment of `segSize` bytes (IP header `ihl` bytes) becomes (0: it cannot be fragmented at this
   * MTU), and in fragSlot the segment-slab slot each fragment needs with `headroom` before it. The
   * caller reserves (count - 1) such slots per segment before cutting.
   */
  segmentFragments(fit: number, fam: number, segSize: number, ihl: number, headroom: number): number {
    const hdr = this.outerLen(fam);
    let limit: number;
    let count: number;
    if (fit === MTU_FRAG_INNER) {
      limit = this.pmtu - hdr;
      const step = ipv4FragmentStep(limit, ihl);
      count = step === 0 ? 0 : ((segSize - ihl + step - 1) / step) | 0;
    } else {
      limit = this.pmtu;
      if (fam === 6) {
        count = ipv6FragmentCount(segSize + hdr, ipv6FragmentStep(limit));
      } else {
        const step = ipv4FragmentStep(limit, OUTER_HDR_LEN4);
        count = step === 0 ? 0 : ((segSize + hdr - OUTER_HDR_LEN4 + step - 1) / step) | 0;
      }
    }
    this.fragSlot = (headroom + limit + 63) & ~63;
    return count;
  }

  /**
   * One segment (at buf[off] in the segment slab, parsed into info, complete checksums) of a super-
   * packet check() sent to MTU_FRAG_*, too big for the tunnel: handled as a packet of its size read
   * alone — IPv4 fragmented then each fragment wrapped, IPv6 wrapped then the outer packet
   * fragmented — with the later fragments in fragSlot-sized slots of seg (segmentFragments() sized
   * them, the caller reserved them). Queued in order. False (too_big counted) when there is no room.
   */
  fragmentSegment(fit: number, buf: Uint8Array, off: number, info: PacketInfo, fam: number, src: Uint32Array, dst: Uint32Array, hopLimit: number, tx: TxQueue, seg: SegmentSlab): boolean {
    const slot = this.fragSlot;
    const room = slot - seg.headroom;
    let count: number;
    if (fit === MTU_FRAG_INNER) {
      const limit = this.pmtu - this.outerLen(fam);
      count = limit > room ? 0 : ipv4FragmentCount(info, limit);
      if (count >= 2 && count - 1 <= seg.freeSlots(slot)) {
        const step = ipv4FragmentStep(limit, info.hdrLen);
        const at = seg.take(slot, count - 1) + seg.headroom;
        this.innerFragments(buf, off, info, fam, src, dst, hopLimit, tx, step, count, seg.buf, at, slot);
        return true;
      }
    } else {
      const o = this.wrap(buf, off, info, fam, src, dst, hopLimit);
      const outerLen = info.totalLen + this.outerLen(fam);
      count = this.pmtu > room ? 0 : this.outerPlan(buf, o, outerLen, fam, this.pmtu);
      if (count >= 1 && count - 1 <= seg.freeSlots(slot)) {
        const at = seg.take(slot, count - 1) + seg.headroom;
        this.outerFragments(buf, o, outerLen, fam, tx, count, seg.buf, at, slot);
        return true;
      }
    }
    this.counters[D_TOO_BIG]++;
    return false;
  }

  /**
   * Write fragments 1.. of the IPv4 packet at buf[off] (`step` payload bytes each) into out at
   * `at`, one per `stride` bytes (room for the outer header before each), fragment 0 in place;
   * wrap each and queue them in order. Counts `fragmented`.
   */
  private innerFragments(buf: Uint8Array, off: number, info: PacketInfo, fam: number, src: Uint32Array, dst: Uint32Array, hopLimit: number, tx: TxQueue, step: number, count: number, out: Uint8Array, at: number, stride: number): void {
    const hdr = this.outerLen(fam);
    const f = this.frag;
    // The later fragments first: fragment 0 is written over the original (its payload stays put)
    for (let k = 1; k < count; k++) writeIpv4Fragment(buf, off, info, step, k, out, at + (k - 1) * stride);
    const n0 = writeIpv4Fragment(buf, off, info, step, 0, buf, off);
    // then wrapped in the order they are sent, so outer IPv4 IDs follow the wire order
    parsePacket(buf, off, n0, f, -1); // we wrote it: it parses
    tx.push(buf, this.wrap(buf, off, f, fam, src, dst, hopLimit), n0 + hdr);
    for (let k = 1; k < count; k++) {
      const base = at + (k - 1) * stride;
      const n = (out[base + 2]! << 8) | out[base + 3]!;
      parsePacket(out, base, n, f, -1);
      tx.push(out, this.wrap(out, base, f, fam, src, dst, hopLimit), n + hdr);
    }
    this.counters[E_FRAGMENTED]++;
  }

  /**
   * Fragments the tunnel packet at buf[o] (outerLen bytes, family fam) needs to fit `limit`; 0 when
   * it cannot be fragmented. Leaves the step (and for IPv4 the parsed header) for outerFragments().
   */
  private outerPlan(buf: Uint8Array, o: number, outerLen: number, fam: number, limit: number): number {
    if (fam === 6) {
      this.step = ipv6FragmentStep(limit);
      return ipv6FragmentCount(outerLen, this.step);
    }
    const f = this.frag;
    if (parsePacket(buf, o, outerLen, f, -1) !== ParseError.OK) return 0;
    f.df = false;
    this.step = ipv4FragmentStep(limit, f.hdrLen);
    return ipv4FragmentCount(f, limit);
  }

  /**
   * Write fragments 1.. of the tunnel packet at buf[o] (as outerPlan() planned) into out at `at`,
   * one per `stride` bytes, fragment 0 in place; queue them in order. Counts `fragmented`.
   */
  private outerFragments(buf: Uint8Array, o: number, outerLen: number, fam: number, tx: TxQueue, count: number, out: Uint8Array, at: number, stride: number): void {
    const step = this.step;
    let n0: number;
    let o0 = o;
    if (fam === 6) {
      this.fragId = (this.fragId + 1) >>> 0;
      for (let k = 1; k < count; k++) writeIpv6Fragment(buf, o, outerLen, step, k, this.fragId, out, at + (k - 1) * stride);
      // fragment 0 in place, 8 bytes earlier (the headroom holds them): its payload does not move
      o0 = o - FRAG_HDR_LEN;
      n0 = writeIpv6Fragment(buf, o, outerLen, step, 0, this.fragId, buf, o0);
    } else {
      const f = this.frag;
      for (let k = 1; k < count; k++) writeIpv4Fragment(buf, o, f, step, k, out, at + (k - 1) * stride);
      n0 = writeIpv4Fragment(buf, o, f, step, 0, buf, o);
    }
    tx.push(buf, o0, n0);
    for (let k = 1; k < count; k++) {
      const base = at + (k - 1) * stride;
      // the length each fragment header carries: IPv6 payload length + 40, IPv4 total length
      const n = fam === 6 ? 40 + ((out[base + 4]! << 8) | out[base + 5]!) : (out[base + 2]! << 8) | out[base + 3]!;
      tx.push(out, base, n);
    }
    this.counters[E_FRAGMENTED]++;
  }
}
