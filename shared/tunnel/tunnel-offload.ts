// Offload handling for packets that go into a tunnel (front encap, a back's return encapsulation):
// the kernel finishes neither a GSO super-packet nor a NEEDS_CSUM checksum inside an IP-in-IP packet
// (virtio_net_hdr has no tunnel type for it), so before the outer header goes on:
//   - a GSO super-packet is cut into wire segments (native splitter, complete checksums) in the
//     segment slab, and each segment is wrapped there and queued, in order;
//   - a non-GSO NEEDS_CSUM packet gets its L4 checksum finished and its virtio header cleared.
// Allocates nothing per packet.
import type { TxQueue } from '../engine/tx-queue.js';
import { VERDICT_QUEUED, dropVerdict } from '../engine/packet-processor.js';
import { PacketInfo } from '../packet/packet-info.js';
import { parsePacket, ParseError } from '../packet/parse.js';
import { fold, sum16 } from '../packet/checksum.js';
import { GSO_E_TOO_BIG, gsoAddon, type GsoAddon } from '../tun/gso.js';
import { VIRTIO_NET_HDR_F_NEEDS_CSUM, clearVnetHeader, vnetSegments } from '../tun/vnet-header.js';
import { VNET_HDR_LEN } from '../tun/tun-device.js';
import { dropIndex } from '../metrics/counter-layout.js';
import type { TunnelMtu } from './tunnel-mtu.js';

/** Below this many L4 bytes a JS sum beats the N-API call. */
const NATIVE_SUM_MIN = 512;

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
   * GSO super-packet at buf[off, off+len) to be wrapped toward dst: cut into the segment slab, wrap
   * every segment (outer family `fam`, source/destination words, hop limit, outer IPv4 IDs from
   * `ids`) and queue them in order. A segment that does not parse is dropped as malformed. Returns
   * VERDICT_QUEUED, or a drop verdict (counted) when nothing could be cut: no segment slab or too
   * few free slots (too_big; the batch loop frees room for the segment count before the packet),
   * headers that do not parse (malformed).
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
    const free = seg.freeSlots(slot);
    if (vnetSegments(vnet, vi) > free) {
      c[D_TOO_BIG]++;
      return dropVerdict(D_TOO_BIG);
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
    for (let k = first; k < first + n; k++) {
      const so = seg.offs[k]!;
      const sl = seg.lens[k]!;
      if (parsePacket(sb, so, sl, info, lbspType) !== ParseError.OK) {
        c[D_MALFORMED]++;
        continue;
      }
      tx.push(sb, ids.wrap(sb, so, info, fam, src, dst, hopLimit), sl + hdr);
    }
    return VERDICT_QUEUED;
  }
}
