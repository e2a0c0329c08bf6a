// The back's side of session persistence (SPEC section 4):
// - request direction (client -> S, after translate or unwrap): remember the flow's LBSP client
//   segment, and clamp the MSS of IPv6 TCP SYNs so the server's segments, once the back has
//   inserted the 40-byte LBSP header into them, still fit the MTU;
// - return direction (S -> client, steered into the TUN by the returnPath policy routing): insert
//   the LBSP option (or fill its server segment) with this back's serverId, keeping the client
//   segment learned from the request direction, and hand the packet back to the kernel, which routes
//   it to the client. A reply whose server set its own final Destination Options header gets the
//   option merged into that header. IPv4 return packets, and everything when stamping is off, pass
//   unchanged.
// A return packet that cannot carry the option (it would exceed the MTU, a fragment, no upper layer,
// a full chain or options list, an AH header that covers the headers) is forwarded unstamped and
// counted.
//
// `stamp: true` (echo) stamps only the replies of flows whose client sent the option: the request
// direction records the flow (ClientSegments) even when its client segment is zero, and a reply
// of an unrecorded flow leaves unchanged, so clients that never asked for LBSP never see an
// extension header that Internet paths often drop (RFC 7872). `always` stamps every IPv6 reply.
import { PacketInfo } from '../shared/packet/packet-info.js';
import { Proto } from '../shared/packet/constants.js';
import { insertOrFillServerSegment, readLbspClient } from '../shared/packet/lbsp.js';
import { clampMss } from '../shared/packet/tcp-mss.js';
import { shiftVnetHeader, vnetGsoSize, vnetGsoType, vnetHdrLen, VIRTIO_NET_HDR_GSO_NONE } from '../shared/tun/vnet-header.js';
import { VNET_HDR_LEN } from '../shared/tun/tun-device.js';
import { eventIndex } from '../shared/metrics/counter-layout.js';
import { ClientSegments } from './client-segments.js';
import type { BackRole } from './back-role.js';

const E_STAMPED = eventIndex('lbsp_stamped');
const E_SKIPPED = eventIndex('lbsp_stamp_skipped');
const E_MSS = eventIndex('mss_clamped');

export class ReturnStamper {
  /** Return traffic is accepted at all (returnPath configured). */
  readonly returnPath: boolean;
  readonly stamp: boolean;
  readonly always: boolean;
  private readonly serverId = new Uint32Array(4);
  private readonly mss: number;
  private readonly mtu: number;
  private readonly type: number;
  private readonly segs: ClientSegments | null;
  private readonly seg = new Uint32Array(4);

  constructor(
    role: BackRole,
    private readonly counters: Float64Array,
    /** Client-segment table hash seed (random by default). */
    seed?: number,
  ) {
    this.returnPath = role.returnPath === true;
    this.stamp = this.returnPath && role.stamp === true;
    this.always = this.stamp && role.stampAlways === true;
    if (role.serverId) this.serverId.set(role.serverId);
    this.mss = this.stamp ? (role.mssClamp ?? 0) : 0;
    this.mtu = role.mtu ?? 1500;
    this.type = role.lbspType;
    this.segs = this.stamp ? new ClientSegments(undefined, seed) : null;
  }

  /** A request toward S (info describes the packet as it now is: dst = S). */
  request(buf: Uint8Array, off: number, info: PacketInfo, partial: boolean): void {
    if (!this.stamp || info.version !== 6) return;
    if (info.lbspStatus === 1 && this.segs !== null && readLbspClient(buf, off, info, this.seg)) {
      // recorded even when zero (not filled in): the client sent the option, echo mode answers it
      this.segs.record(info.proto, info.src, info.srcPort, info.dst, info.dstPort, this.seg);
    }
    if (this.mss > 0 && info.proto === Proto.TCP && (info.tcpFlags & 0x02) !== 0) {
      if (clampMss(buf, off, info, this.mss, partial) === this.mss) this.counters[E_MSS]++;
    }
  }

  /**
   * A return packet from a service (info.src = S). Returns the offset of the packet to forward (its
   * length is info.totalLen, which grows when the option is inserted): stamped when possible, else
   * as it is.
   */
  returnPacket(buf: Uint8Array, off: number, len: number, info: PacketInfo, vnet: Uint8Array, vnetOff: number): number {
    if (!this.stamp || info.version !== 6) return off;
    const c = this.counters;
    // The size on the wire: a GSO super-packet (offloads) leaves as segments of hdr_len + gso_size.
    const i = vnetOff / VNET_HDR_LEN;
    const wire = vnet.length > 0 && vnetGsoType(vnet, i) !== VIRTIO_NET_HDR_GSO_NONE ? vnetHdrLen(vnet, i) + vnetGsoSize(vnet, i) : info.totalLen;
    // The codec knows how much the packet grows (40 inserted, 32 or 40 merged, 0 filled): it gets
    // the room left under the MTU and refuses (NO_ROOM) past it.
    const known = this.segs !== null && this.segs.find(info.proto, info.src, info.srcPort, info.dst, info.dstPort, this.seg);
    if (!known && !this.always) return off; // echo: this flow's client did not send the option
    if (info.hasAh) { c[E_SKIPPED]++; return off; } // AH authenticates the headers: inserting breaks it
    const s = this.seg;
    const seg = known && (s[0]! | s[1]! | s[2]! | s[3]!) !== 0 ? s : null;
    const o = insertOrFillServerSegment(buf, off, len, info, this.type, this.serverId, seg, this.mtu - wire);
    if (o < 0) {
      c[E_SKIPPED]++;
      return off;
    }
    if (o !== off && vnet.length > 0) shiftVnetHeader(vnet, i, off - o); // csum_start, hdr_len + growth
    c[E_STAMPED]++;
    return o;
  }
}
