// Offload handling for packets that go into a tunnel (front encap, a back's return encapsulation):
// the kernel finishes neither a GSO super-packet nor a NEEDS_CSUM checksum inside an IP-in-IP packet
// (virtio_net_hdr has no tunnel type for it), so before the outer header goes on:
//   - a GSO super-packet is cut into wire segments (native splitter, complete checksums) in the
//     segment slab, and each segment is wrapped there and queued, in order (a segment too big for
//     the tunnel fragmented as tunnel-mtu.ts fragments a packet of its size);
//   - a non-GSO NEEDS_CSUM packet gets its L4 checksum finished and its virtio header cleared.
// With the front's tunnel TAP (offload.udpTunnel), a TCP super-packet going into a UDP tunnel is not
// cut: the outer IP + UDP header is written once in front of it, an Ethernet header addressed to the
// TAP before that, and the virtio header extended to a UDP-tunnel GSO type (wrapUdpGso); the kernel
// segments it on the way out, filling each segment's outer UDP checksum and IPv4 ID.
// Allocates nothing per packet.
import type { TxQueue } from '../engine/tx-queue.js';
import { VERDICT_QUEUED, dropVerdict } from '../engine/packet-processor.js';
import { PacketInfo } from '../packet/packet-info.js';
import { parsePacket, ParseError } from '../packet/parse.js';
import { fold, sum16 } from '../packet/checksum.js';
import { GSO_E_TOO_BIG, gsoAddon, type GsoAddon } from '../tun/gso.js';
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4,
  VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6,
  clearVnetHeader,
  vnetGsoSize,
  vnetHdrLen,
  vnetSegments,
} from '../tun/vnet-header.js';
import { VNET_HDR_LEN } from '../tun/tun-device.js';
import { dropIndex } from '../metrics/counter-layout.js';
import { MTU_FIT, type TunnelMtu } from './tunnel-mtu.js';

/** Below this many L4 bytes a JS sum beats the N-API call. */
const NATIVE_SUM_MIN = 512;

/** wrapUdpGso: the super-packet does not qualify for the TAP; cut it (wrapSegments). Not a verdict value. */
export const TAP_NOT_TAKEN = 2;
const ETH_HLEN = 14;
/** Source MAC of the frames the front writes to its TAP (locally administered; the kernel ignores it). */
const TAP_SRC_MAC = [0x02, 0x6d, 0x73, 0x6c, 0x62, 0x00];

const D_MALFORMED = dropIndex('malformed');
const D_TOO_BIG = dropIndex('too_big');

export class TunnelOffload {
  private readonly info = new PacketInfo();
  private g: GsoAddon | undefined;

  constructor(private readonly counters: Float64Array) {}

  /** True when the virtio header describes a GSO super-packet. */
  static isGso(vnet: Uint8Array, vnetOff: number): boolean {
    return vnet.length > 0 && vnet[vnetOff + 1] !== 0;
  }

  /**
   * Non-GSO packet about to be wrapped: finish a NEEDS_CSUM checksum over buf[off, off+len) (len =
   * the IP total length) and clear the virtio header. False when csum_start/offset point outside
   * the packet, or csum_start lies before `minStart` (the end of the IP header chain: a checksum
   * written there would overwrite the IP header).
   */
  finish(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, minStart = 0): boolean {
    // the header's work in its own method: this test alone is what the processors inline
    return vnet.length === 0 || this.finishVnet(buf, off, len, vnet, vnetOff, minStart);
  }

  private finishVnet(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, minStart: number): boolean {
    if ((vnet[vnetOff] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
      const cs = vnet[vnetOff + 6] | (vnet[vnetOff + 7] << 8);
      const co = vnet[vnetOff + 8] | (vnet[vnetOff + 9] << 8);
      if (cs < minStart || cs >= len || cs + co + 2 > len) return false;
      if (len - cs >= NATIVE_SUM_MIN) {
        if (this.g === undefined) this.g = gsoAddon();
        this.g.completeChecksum(buf, off, len, cs, co);
      } else {
        let c = ~fold(sum16(buf, off + cs, off + len, 0)) & 0xffff;
        if (c === 0) c = 0xffff;
        buf[off + cs + co] = c >> 8;
        buf[off + cs + co + 1] = c & 0xff;
      }
    }
    clearVnetHeader(vnet, vnetOff / VNET_HDR_LEN);
    return true;
  }

  /**
   * TCP GSO super-packet at buf[off] (parsed into info) going into a UDP tunnel toward dst, when the
   * loop has a tunnel TAP (tx.tapMac): wrap it whole and queue it as one frame for the TAP. Returns
   * VERDICT_QUEUED, or TAP_NOT_TAKEN (nothing touched) when there is no TAP, the tunnel is not UDP, or
   * the packet is not a checksum-offloaded TCP super-packet whose outer length fits 16 bits.
   */
  wrapUdpGso(
    tx: TxQueue,
    buf: Uint8Array,
    off: number,
    info: PacketInfo,
    vnet: Uint8Array,
    vnetOff: number,
    fam: number,
    src: Uint32Array,
    dst: Uint32Array,
    hopLimit: number,
    ids: TunnelMtu,
  ): number {
    const mac = tx.tapMac;
    if (mac === null || ids.udpPort === 0) return TAP_NOT_TAKEN;
    // the ECN flag (CWR on the first segment only) is left to the own split, as are UDP payloads
    const type = vnet[vnetOff + 1];
    if (type !== VIRTIO_NET_HDR_GSO_TCPV4 && type !== VIRTIO_NET_HDR_GSO_TCPV6) return TAP_NOT_TAKEN;
    if ((vnet[vnetOff] & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0) return TAP_NOT_TAKEN;
    const hdr = ids.outerLen(fam);
    if (info.totalLen + hdr > 65535) return TAP_NOT_TAKEN;
    const segs = vnetSegments(vnet, vnetOff / VNET_HDR_LEN);
    const o = ids.wrapUdpGso(buf, off, info, fam, src, dst, hopLimit, segs);
    const e = o - ETH_HLEN;
    for (let k = 0; k < 6; k++) {
      buf[e + k] = mac[k]!;
      buf[e + 6 + k] = TAP_SRC_MAC[k]!;
    }
    buf[e + 12] = fam === 4 ? 0x08 : 0x86;
    buf[e + 13] = fam === 4 ? 0x00 : 0xdd;
    // offsets now count from the frame start; the kernel fills every segment's outer UDP checksum
    const delta = off - e;
    vnet[vnetOff] |= VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM;
    vnet[vnetOff + 1] = type | (fam === 4 ? VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4 : VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6);
    const hl = (vnet[vnetOff + 2] | (vnet[vnetOff + 3] << 8)) + delta;
    vnet[vnetOff + 2] = hl & 0xff;
    vnet[vnetOff + 3] = hl >> 8;
    const cs = (vnet[vnetOff + 6] | (vnet[vnetOff + 7] << 8)) + delta;
    vnet[vnetOff + 6] = cs & 0xff;
    vnet[vnetOff + 7] = cs >> 8;
    tx.forwardTap(buf, e, info.totalLen + delta, vnet, vnetOff);
    return VERDICT_QUEUED;
  }

  /**
   * GSO super-packet at buf[off, off+len) to be wrapped toward dst: cut into the segment slab, wrap
   * every segment (outer family `fam`, source/destination words, hop limit, outer IPv4 IDs from
   * `ids`) and queue them in order. `fit` is what ids.check() said of one segment: with MTU_FRAG_*
   * every segment too big for the tunnel is fragmented as a packet of its size read alone (IPv4
   * without DF: fragmented, each fragment wrapped; IPv6 <= 1280: wrapped, the outer packet
   * fragmented), its later fragments in the segment slab too, reserved before the cut. A segment
   * that does not parse is dropped as malformed. Returns VERDICT_QUEUED, or a drop verdict (counted)
   * when nothing could be cut: no segment slab or too few free slots (too_big; the batch loop frees
   * room for the segment count before the packet), headers that do not parse (malformed).
   */
  wrapSegments(
    tx: TxQueue,
    buf: Uint8Array,
    off: number,
    len: number,
    vnet: Uint8Array,
    vnetOff: number,
    fam: number,
    src: Uint32Array,
    dst: Uint32Array,
    hopLimit: number,
    ids: TunnelMtu,
    lbspType: number,
    fit: number = MTU_FIT,
  ): number {
    const seg = tx.seg;
    const c = this.counters;
    if (seg === undefined) {
      c[D_TOO_BIG]++;
      return dropVerdict(D_TOO_BIG);
    }
    if (this.g === undefined) this.g = gsoAddon();
    const hdr = ids.outerLen(fam);
    // the segment count the batch loop recorded in the header (prepareRxVnet) and made room for
    const vi = vnetOff / VNET_HDR_LEN;
    const slot = seg.slotFor(vnet, vi);
    const segs = vnetSegments(vnet, vi);
    let free = seg.freeSlots(slot);
    if (segs > free) {
      c[D_TOO_BIG]++;
      return dropVerdict(D_TOO_BIG);
    }
    if (fit !== MTU_FIT) {
      // every full segment becomes `per` fragments: room for the later ones before anything is cut
      // (the loop reserved room for the segments only; what is queued is written first if need be)
      const ihl = (buf[off]! >> 4) === 4 ? (buf[off]! & 15) * 4 : 40;
      const per = ids.segmentFragments(fit, fam, vnetHdrLen(vnet, vi) + vnetGsoSize(vnet, vi), ihl, seg.headroom);
      const need = segs * (per - 1);
      if (per >= 1 && seg.freeSlotsAfter(slot, segs, ids.fragSlot) < need && tx.writeEarly()) free = seg.freeSlots(slot);
      if (per < 1 || seg.freeSlotsAfter(slot, segs, ids.fragSlot) < need) {
        c[D_TOO_BIG]++;
        return dropVerdict(D_TOO_BIG);
      }
    }
    const first = seg.firstSlot(slot);
    const n = this.g.gsoSplit(buf, off, len, vnet, vnetOff, seg.buf, seg.offs, seg.lens, slot, seg.headroom, first, free, 0);
    if (n < 0) {
      const d = n === GSO_E_TOO_BIG ? D_TOO_BIG : D_MALFORMED;
      c[d]++;
      return dropVerdict(d);
    }
    seg.used = (first + n) * slot;
    const info = this.info;
    const sb = seg.buf;
    // a segment of at most this many bytes fits the tunnel as it is (the last one may, when shorter)
    const fits = fit === MTU_FIT ? 65535 : ids.checkedMtu - hdr;
    for (let k = first; k < first + n; k++) {
      const so = seg.offs[k]!;
      const sl = seg.lens[k]!;
      if (parsePacket(sb, so, sl, info, lbspType) !== ParseError.OK) {
        c[D_MALFORMED]++;
        continue;
      }
      if (sl <= fits) tx.push(sb, ids.wrap(sb, so, info, fam, src, dst, hopLimit), sl + hdr);
      else ids.fragmentSegment(fit, sb, so, info, fam, src, dst, hopLimit, tx, seg);
    }
    return VERDICT_QUEUED;
  }
}
