// MSLB-B per-packet logic: accept only what is addressed to our own B addresses; translate B -> S,
// or unwrap a tunnel packet from an allowed front whose inner destination is one of our services.
// Anything else is a counted drop (a decapsulator that unwraps for anyone is an open relay).
import type { TxQueue } from '../shared/engine/tx-queue.js';
import { VERDICT_CONSUMED, VERDICT_QUEUED, dropVerdict } from '../shared/engine/packet-processor.js';
import type { RoleProcessor } from '../shared/engine/worker-runtime.js';
import type { ToWorker } from '../shared/engine/worker-messages.js';
import { PacketInfo } from '../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../shared/packet/parse.js';
import { isMulticastDst } from '../shared/packet/address-class.js';
import { rewriteDst } from '../shared/packet/translate.js';
import { addrDelta } from '../shared/packet/checksum.js';
import { decapsulate, DecapResult, DecapVerdict } from '../shared/packet/encap.js';
import { decapsulateUdp } from '../shared/packet/udp-encap.js';
import { completePartialChecksum, fold, pseudoHeaderSum } from '../shared/packet/checksum.js';
import { Proto } from '../shared/packet/constants.js';
import { AddressSet } from './address-set.js';
import { PrefixTable, PrefixTableBuilder } from '../shared/table/prefix-table.js';
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4,
  VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6,
  clearVnetHeader,
  shiftVnetHeader,
  vnetCsumOffset,
  vnetCsumStart,
  vnetHdrLen,
  vnetSegments,
} from '../shared/tun/vnet-header.js';
import { gsoAddon, type GsoAddon } from '../shared/tun/gso.js';
import { CUT_OK, CUT_TOO_BIG } from '../shared/engine/segment-slab.js';
import { dropIndex, eventIndex, MAX_SERVICE_SLOTS, SERVICE_SINK_SLOT, servicePacketsIndex } from '../shared/metrics/counter-layout.js';
import { MODE_ENCAP, MODE_TRANSLATE, type BackRole } from './back-role.js';
import { ReturnStamper } from './return-stamp.js';
import { ReturnEncap } from './return-encap.js';
import { incrementHopLimit } from '../shared/packet/hop-limit.js';
import { TunnelReassembly, REASM_HELD } from '../shared/tunnel/tunnel-reassembly.js';

const D_MALFORMED = dropIndex('malformed');
const E_MULTICAST = eventIndex('multicast_ignored');
const D_NOT_SERVICE = dropIndex('not_service');
const D_UNAUTHORIZED = dropIndex('unauthorized_source');
const E_FABRIC_ICMP = eventIndex('fabric_icmp_handled');
const D_TOO_BIG = dropIndex('too_big');
const GSO_UDP_TUNNEL = VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4 | VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6;
/** From this many UDP bytes on the outer checksum is verified natively (an N-API call beats JS). */
const NATIVE_SUM_MIN = 512;

export class BackProcessor implements RoleProcessor {
  private readonly info = new PacketInfo();
  private readonly inner = new PacketInfo();
  private readonly decap = new DecapResult();
  private readonly scratch = new Uint32Array(4);
  // Role settings: replaced whole by configure() when the back's config is reloaded (SIGHUP).
  private own!: AddressSet;
  private services!: AddressSet;
  private ownMode!: Uint8Array;
  /** Per own address: its service S words and the checksum delta of B -> S. */
  private ownService!: Uint32Array;
  private ownDelta!: Int32Array;
  /** First service counter (servicePacketsIndex) per own address and per entry of `services`. */
  private ownCounters!: Int32Array;
  private serviceCounters!: Int32Array;
  private fronts!: PrefixTable;
  /** udpPort: IP-in-UDP tunnels accepted on this port too (0: IP-in-IP only). */
  private udpPort = 0;
  private lbspType = 0x1e;
  /** Return traffic from the services (returnPath) and LBSP stamping / MSS clamp (SPEC 4). */
  private stamper!: ReturnStamper;
  /** Return encapsulation toward a gateway (draft section 6); null when off. */
  private retEncap: ReturnEncap | null = null;
  private readonly seed: number | undefined;
  /** Outer fragments of tunnel packets (RFC 2473 7.1: a front fragments outer packets). */
  private readonly reasm: TunnelReassembly;
  private readonly noVnet = new Uint8Array(0);
  private g: GsoAddon | undefined;
  private now: number;

  constructor(
    role: BackRole,
    private readonly counters: Float64Array,
    /** Clock in ms (reassembly ages, ICMP rate limit); tests and the fuzzer pass a fake one. */
    clock: () => number = Date.now,
    /** Client-segment table hash seed (random per worker by default). */
    seed?: number,
  ) {
    this.now = clock();
    this.reasm = new TunnelReassembly(counters);
    this.seed = seed;
    this.configure(role);
  }

  /** Apply role settings (at start, and between batches when the config was reloaded). */
  private configure(role: BackRole): void {
    this.lbspType = role.lbspType;
    this.udpPort = role.udpPort ?? 0;
    this.stamper = new ReturnStamper(role, this.counters, this.seed);
    this.retEncap = role.returnEncap ? new ReturnEncap(role.returnEncap, this.counters, this.now, role.lbspType) : null;
    this.own = new AddressSet(role.own.map((o) => ({ family: o.family, words: o.b })));
    this.services = new AddressSet(role.services);
    this.ownMode = Uint8Array.from(role.own.map((o) => o.mode));
    this.ownService = new Uint32Array(role.own.length * 4);
    this.ownDelta = new Int32Array(role.own.length);
    // a slot the main thread did not give (tests, the fuzzer): the service's position; beyond the
    // bound, the sink that is never exported
    const counterOf = (slot: number) => servicePacketsIndex(slot >= 0 && slot < MAX_SERVICE_SLOTS ? slot : SERVICE_SINK_SLOT);
    this.serviceCounters = Int32Array.from(role.services, (sv, i) => counterOf(sv.slot ?? i));
    this.ownCounters = Int32Array.from(role.own, (o) => {
      const i = this.services.find(o.family, Uint32Array.from(o.s));
      return o.slot !== undefined ? counterOf(o.slot) : i >= 0 ? this.serviceCounters[i]! : counterOf(SERVICE_SINK_SLOT);
    });
    role.own.forEach((o, i) => {
      const b = Uint32Array.from(o.b);
      const s = Uint32Array.from(o.s);
      this.ownService.set(s, i * 4);
      this.ownDelta[i] = addrDelta(b, s, o.family === 4 ? 1 : 4);
    });
    const fb = new PrefixTableBuilder();
    for (const p of role.allowedFronts) {
      if (p.family === 4) fb.addV4(p.words[0], p.len, 0);
      else fb.addV6(p.words[0], p.words[1], p.words[2], p.words[3], p.len, 0);
    }
    this.fronts = fb.build();
  }

  /** New role settings from a SIGHUP reload of the back's config (addresses, allowedFronts, lbsp). */
  update(msg: ToWorker): void {
    if (msg.type === 'role') this.configure(msg.role as BackRole);
  }

  endBatch(nowMs: number): void {
    this.now = nowMs;
    if (this.retEncap !== null) this.retEncap.nowMs = nowMs;
  }

  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const info = this.info;
    const c = this.counters;
    const err = parsePacket(buf, off, len, info, this.lbspType);
    if (err !== ParseError.OK) return this.drop(D_MALFORMED); // SPEC 5: bad version and every other parse failure
    if (isMulticastDst(info)) {
      c[E_MULTICAST]++; // the host's own MLD reports: no service is multicast
      return VERDICT_CONSUMED;
    }
    if (this.retEncap !== null && (info.proto === Proto.ICMP || info.proto === Proto.ICMPV6) && info.icmpType >= 0 && this.retEncap.fabricError(buf, off, info, tx)) {
      c[E_FABRIC_ICMP]++; // about our return tunnel toward the gateway: path MTU learned, relayed
      return VERDICT_CONSUMED;
    }
    const idx = this.own.find(info.version, info.dst);
    if (idx < 0 && this.stamper.returnPath && this.services.find(info.version, info.src) >= 0) {
      // return traffic from S, steered into the TUN by the returnPath rules: stamp, hand back
      const o = this.stamper.returnPacket(buf, off, len, info, vnet, vnetOff);
      // draft section 6: wrapped toward the gateway (outer source B), past ingress filters
      if (this.retEncap !== null) return this.retEncap.wrap(buf, o, info.totalLen, vnet, vnetOff, tx);
      tx.forward(buf, o, info.totalLen, vnet, vnetOff);
      return VERDICT_QUEUED;
    }
    if (idx < 0) return this.drop(D_NOT_SERVICE);
    const mode = this.ownMode[idx];
    if (mode !== MODE_TRANSLATE && (info.proto === Proto.IPIP || info.proto === Proto.IPV6)) {
      // SPEC 6: protocol 4/41 from an allowed front is unwrapped. From anyone else, `encap` refuses
      // it; `auto` translates it like everything else (a client's own tunnel traffic to S): the back
      // never unwraps for a stranger, so it relays nothing it would not relay in translate mode.
      const src = info.src;
      const fromFront = (info.version === 4 ? this.fronts.lookup4(src[0]) : this.fronts.lookup6(src[0], src[1], src[2], src[3])) >= 0;
      if (fromFront) {
        if (info.isFragment) return this.reassemble(buf, off, tx);
        if (info.l4Off >= 0) return this.unwrap(buf, off, vnet, vnetOff, tx);
      } else if (mode === MODE_ENCAP) {
        return this.drop(D_UNAUTHORIZED);
      }
    }
    if (mode !== MODE_TRANSLATE && this.udpPort !== 0 && info.proto === Proto.UDP && (info.isFragment || info.dstPort === this.udpPort)) {
      // IP-in-UDP on udpPort: the same rules as protocol 4/41 above. An outer fragment from a front
      // is reassembled and its port checked on the whole datagram (unwrap).
      const src = info.src;
      const fromFront = (info.version === 4 ? this.fronts.lookup4(src[0]) : this.fronts.lookup6(src[0], src[1], src[2], src[3])) >= 0;
      if (fromFront) {
        if (info.isFragment) return this.reassemble(buf, off, tx);
        return this.unwrap(buf, off, vnet, vnetOff, tx);
      } else if (mode === MODE_ENCAP) {
        return this.drop(D_UNAUTHORIZED);
      }
    }
    if (mode === MODE_ENCAP) return this.drop(D_NOT_SERVICE);
    const s = this.scratch;
    for (let k = 0; k < 4; k++) s[k] = this.ownService[idx * 4 + k];
    const partial = vnet.length > 0 && (vnet[vnetOff] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    rewriteDst(buf, off, info, s, this.ownDelta[idx], partial);
    // the kernel forwards what we write with a second decrement: this host is one hop
    incrementHopLimit(buf, off, info);
    this.stamper.request(buf, off, info, partial);
    // the service's wire packets and bytes (a GSO super-packet as its segments, each with its headers)
    const at = this.ownCounters[idx]!;
    const segs = vnet.length > 0 ? vnetSegments(vnet, vnetOff / 12) : 1;
    c[at] += segs;
    c[at + 1] += segs > 1 ? info.totalLen + (segs - 1) * vnetHdrLen(vnet, vnetOff / 12) : info.totalLen;
    tx.forward(buf, off, info.totalLen, vnet, vnetOff);
    return VERDICT_QUEUED;
  }

  /** Count a drop by its reason and return its verdict. */
  private drop(reason: number): number {
    this.counters[reason]++;
    return dropVerdict(reason);
  }

  /**
   * An outer fragment of a tunnel packet from an allowed front to one of our addresses: into
   * bounded reassembly (shared/tunnel/tunnel-reassembly.ts); the complete tunnel packet is
   * unwrapped in its own aux slot and queued from there. A fragment held for later is consumed.
   */
  private reassemble(buf: Uint8Array, off: number, tx: TxQueue): number {
    const base = this.reasm.add(buf, off, this.info, this.lbspType, this.now, tx);
    if (base < 0) return base === REASM_HELD ? VERDICT_CONSUMED : base;
    return this.unwrap(tx.aux.buf, base, this.noVnet, 0, tx);
  }

  /**
   * A UDP tunnel super-packet (virtio UDP_L4 GSO) from an allowed front: cut into the segment slab
   * (each segment a complete tunnel packet, outer checksum computed) and unwrap each like a packet
   * read alone; a segment that fails is counted by unwrap and the others go on. The inner packets
   * are then merged where they are consecutive segments of one flow (TxQueue.mergeFrom). Returns
   * VERDICT_QUEUED, or a drop verdict when nothing could be cut (no segment slab or room: too_big;
   * headers the splitter refuses: malformed).
   */
  private unwrapSegments(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const seg = tx.seg;
    if (seg === undefined) return this.drop(D_TOO_BIG);
    const cut = seg.cut(buf, off, len, vnet, vnetOff);
    if (cut !== CUT_OK) return this.drop(cut === CUT_TOO_BIG ? D_TOO_BIG : D_MALFORMED);
    const info = this.info;
    const first = tx.count;
    for (let k = seg.cutFirst, end = seg.cutFirst + seg.cutCount; k < end; k++) {
      const so = seg.offs[k]!;
      if (parsePacket(seg.buf, so, seg.lens[k]!, info, this.lbspType) !== ParseError.OK) {
        this.counters[D_MALFORMED]++;
        continue;
      }
      this.unwrap(seg.buf, so, this.noVnet, 0, tx);
    }
    // The inner packets of one flow go back together as one TSO (or USO) super-packet: one write
    // and one trip through the kernel instead of one per segment, as the client's stack sent them.
    tx.mergeFrom(first);
    return VERDICT_QUEUED;
  }

  /**
   * The outer UDP checksum of the tunnel packet whose UDP header is at buf[u], summed natively: the
   * field is set to the pseudo-header sum, the addon completes it (as for NEEDS_CSUM), the result is
   * compared with what was there and the field restored. True also when decapsulateUdp must judge
   * the packet itself (zero checksum, a length it refuses).
   */
  private udpChecksumNative(buf: Uint8Array, u: number, info: PacketInfo): boolean {
    const ulen = (buf[u + 4] << 8) | buf[u + 5];
    const ck = (buf[u + 6] << 8) | buf[u + 7];
    if (ck === 0 || ulen < 8 || ulen > info.l4Len) return true;
    const g = this.gso();
    const ps = fold(pseudoHeaderSum(info.src, info.dst, info.version === 4 ? 1 : 4, Proto.UDP, ulen));
    buf[u + 6] = ps >> 8;
    buf[u + 7] = ps & 0xff;
    g.completeChecksum(buf, u, ulen, 0, 6);
    const c = (buf[u + 6] << 8) | buf[u + 7];
    buf[u + 6] = ck >> 8;
    buf[u + 7] = ck & 0xff;
    return c === ck;
  }

  private gso(): GsoAddon {
    if (this.g === undefined) this.g = gsoAddon();
    return this.g;
  }

  /**
   * A UDP-tunnel super-packet to udpPort from an allowed front (checked by the caller), as a TUN
   * with TUN_F_UDP_TUNNEL_GSO hands it over: one outer IP + UDP header before an inner TCP
   * super-packet; virtio gso_type UDP_TUNNEL_IPV4/IPV6 | TCPV4/TCPV6, NEEDS_CSUM at the inner TCP
   * header. The outer checksum is one the kernel fills per segment (it vouched for the bytes when
   * it merged them), so it is not summed here; every other check of unwrap runs once for all
   * segments (UDP length, inner packet fits, inner IPv4 header checksum, ECN, inner destination a
   * service), the outer header is stripped and the virtio header becomes the inner
   * packet's TSO header (tunnel bits and UDP_TUNNEL_CSUM cleared, hdr_len and csum_start less the
   * outer length). A header that does not describe this packet is malformed.
   */
  private unwrapTunnelGso(buf: Uint8Array, off: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const info = this.info;
    const d = this.decap;
    const vi = vnetOff / 12;
    const type = vnet[vnetOff + 1] & ~(GSO_UDP_TUNNEL | VIRTIO_NET_HDR_GSO_ECN);
    const outerV6 = (vnet[vnetOff + 1] & VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6) !== 0;
    if ((vnet[vnetOff] & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0 || outerV6 !== (info.version === 6)) return this.drop(D_MALFORMED);
    if (decapsulateUdp(buf, off, info, d, true) !== DecapVerdict.OK) return this.drop(D_MALFORMED);
    const inner = this.inner;
    if (parsePacket(buf, d.off, d.len, inner, this.lbspType) !== ParseError.OK) return this.drop(D_MALFORMED);
    const outerLen = d.off - off;
    const tcpType = inner.version === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
    if (type !== tcpType || inner.proto !== Proto.TCP || inner.l4Off < 0 || vnetCsumStart(vnet, vi) !== outerLen + inner.l4Off) return this.drop(D_MALFORMED);
    // inner TCP: never a nested tunnel, so any other destination is simply not ours
    const svc = this.services.find(inner.version, inner.dst);
    if (svc < 0) return this.drop(D_NOT_SERVICE);
    this.stamper.request(buf, d.off, inner, true);
    vnet[vnetOff] &= ~VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM;
    vnet[vnetOff + 1] &= ~GSO_UDP_TUNNEL;
    shiftVnetHeader(vnet, vi, -outerLen);
    // per-service wire packets and bytes, as unwrap() counts them (the inner segments' headers)
    const at = this.serviceCounters[svc]!;
    const segs = vnetSegments(vnet, vi);
    const c = this.counters;
    c[at] += segs;
    c[at + 1] += segs > 1 ? d.len + (segs - 1) * vnetHdrLen(vnet, vi) : d.len;
    tx.forward(buf, d.off, d.len, vnet, vnetOff);
    return VERDICT_QUEUED;
  }

  /** A tunnel packet from an allowed front (checked by the caller): unwrap, check the inner packet. */
  private unwrap(buf: Uint8Array, off: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const info = this.info;
    const d = this.decap;
    if (info.proto === Proto.UDP) {
      if (info.dstPort !== this.udpPort) return this.drop(D_NOT_SERVICE); // a reassembled datagram to another port
      if (vnet.length > 0) {
        // Same-flow tunnel packets that GRO on the way (the front's write-side GRO, or the host's)
        // merged into a UDP super-packet (USO): cut natively, every segment unwrapped on its own.
        // A UDP-tunnel super-packet (device header of 24 bytes, TUN_F_UDP_TUNNEL_GSO): decapsulated
        // whole, the inner TCP super-packet goes on with its virtio header turned into a TSO one.
        if ((vnet[vnetOff + 1] & GSO_UDP_TUNNEL) !== 0) return this.unwrapTunnelGso(buf, off, vnet, vnetOff, tx);
        if (vnet[vnetOff + 1] !== 0) return this.unwrapSegments(buf, off, info.totalLen, vnet, vnetOff, tx);
        // A sender on this host leaves a checksum partial (NEEDS_CSUM): finish it so the check
        // below judges the bytes. The kernel's own segmentation of a UDP-tunnel super-packet
        // leaves the inner TCP checksum partial (csum_start there) and the outer one computed
        // for the finished bytes (local checksum offload): finish the one csum_start names.
        if ((vnet[vnetOff] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
          const vi = vnetOff / 12;
          const cs = vnetCsumStart(vnet, vi);
          if (cs < info.l4Off + 8) completePartialChecksum(buf, off, info);
          else if (this.gso().completeChecksum(buf, off, info.totalLen, cs, vnetCsumOffset(vnet, vi)) < 0) return this.drop(D_MALFORMED);
        }
        clearVnetHeader(vnet, vnetOff / 12);
      }
      const big = info.l4Len >= NATIVE_SUM_MIN;
      if (big && !this.udpChecksumNative(buf, off + info.l4Off, info)) return this.drop(D_MALFORMED);
      if (decapsulateUdp(buf, off, info, d, big) !== DecapVerdict.OK) return this.drop(D_MALFORMED);
    } else if (decapsulate(buf, off, info, d) !== DecapVerdict.OK) {
      return this.drop(D_MALFORMED);
    }
    const inner = this.inner;
    if (parsePacket(buf, d.off, d.len, inner, this.lbspType) !== ParseError.OK) return this.drop(D_MALFORMED);
    const svc = this.services.find(inner.version, inner.dst);
    if (svc < 0) {
      // SPEC 5: a tunnel packet whose inner packet is itself a tunnel packet to this node is
      // malformed; any other inner destination that is not a service is not_service.
      const tunnel = inner.proto === Proto.IPIP || inner.proto === Proto.IPV6 || (this.udpPort !== 0 && inner.proto === Proto.UDP && inner.dstPort === this.udpPort);
      const nested = tunnel && inner.l4Off >= 0 && this.own.find(inner.version, inner.dst) >= 0;
      return this.drop(nested ? D_MALFORMED : D_NOT_SERVICE);
    }
    this.stamper.request(buf, d.off, inner, vnet.length > 0 && (vnet[vnetOff] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0);
    if (vnet.length > 0) shiftVnetHeader(vnet, vnetOff / 12, off - d.off);
    const at = this.serviceCounters[svc]!;
    const segs = vnet.length > 0 ? vnetSegments(vnet, vnetOff / 12) : 1; // as in process()
    const c = this.counters;
    c[at] += segs;
    c[at + 1] += segs > 1 ? d.len + (segs - 1) * vnetHdrLen(vnet, vnetOff / 12) : d.len;
    tx.forward(buf, d.off, d.len, vnet, vnetOff);
    return VERDICT_QUEUED;
  }
}
