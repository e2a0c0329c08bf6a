// virtio_net_hdr (12-byte form, TUNSETVNETHDRSZ 12) accessors over a header area such as rx.vnet:
// header i starts at byte i * VNET_HDR_LEN. Multi-byte fields are little-endian (virtio 1.0 /
// x86 host order). Layout: flags u8 @0, gso_type u8 @1, hdr_len u16 @2, gso_size u16 @4,
// csum_start u16 @6, csum_offset u16 @8, num_buffers u16 @10 (the kernel neither writes nor reads it
// on a TUN device: the engine keeps the packet's wire segment count there, see prepareRxVnet).
import { VNET_HDR_LEN } from './tun-device.js';

/** csum_start/csum_offset are valid: the L4 checksum field holds only the pseudo-header sum. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** The checksum has been validated. */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
/** UDP-tunnel GSO (24-byte header): the kernel fills each segment's outer UDP checksum. */
export const VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM = 8;

export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;
/** OR'ed with TCPV4/TCPV6: the packet is a UDP tunnel (outer IPv4 / IPv6) around a TCP super-packet. */
export const VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4 = 0x20;
export const VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6 = 0x40;

function u16(a: Uint8Array, p: number): number {
  return a[p] | (a[p + 1] << 8);
}

function setU16(a: Uint8Array, p: number, v: number): void {
  a[p] = v & 0xff;
  a[p + 1] = (v >>> 8) & 0xff;
}

export function vnetFlags(a: Uint8Array, i: number): number {
  return a[i * VNET_HDR_LEN];
}
export function vnetGsoType(a: Uint8Array, i: number): number {
  return a[i * VNET_HDR_LEN + 1];
}
export function vnetHdrLen(a: Uint8Array, i: number): number {
  return u16(a, i * VNET_HDR_LEN + 2);
}
export function vnetGsoSize(a: Uint8Array, i: number): number {
  return u16(a, i * VNET_HDR_LEN + 4);
}
export function vnetCsumStart(a: Uint8Array, i: number): number {
  return u16(a, i * VNET_HDR_LEN + 6);
}
export function vnetCsumOffset(a: Uint8Array, i: number): number {
  return u16(a, i * VNET_HDR_LEN + 8);
}

/** Write header i in full (num_buffers = 0). */
export function setVnetHeader(
  a: Uint8Array,
  i: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  const p = i * VNET_HDR_LEN;
  a[p] = flags;
  a[p + 1] = gsoType;
  setU16(a, p + 2, hdrLen);
  setU16(a, p + 4, gsoSize);
  setU16(a, p + 6, csumStart);
  setU16(a, p + 8, csumOffset);
  setU16(a, p + 10, 0);
}

/** A plain packet: no offload requested, checksums already complete. */
export function clearVnetHeader(a: Uint8Array, i: number): void {
  a.fill(0, i * VNET_HDR_LEN, (i + 1) * VNET_HDR_LEN);
}

/** Copy header i of `from` to header j of `to` (e.g. rx.vnet into a tx header area). */
export function copyVnetHeader(from: Uint8Array, i: number, to: Uint8Array, j: number): void {
  const s = i * VNET_HDR_LEN;
  const d = j * VNET_HDR_LEN;
  for (let k = 0; k < VNET_HDR_LEN; k++) to[d + k] = from[s + k];
}

/**
 * csum_start/csum_offset are relative to the packet start. When the engine prepends an outer
 * header of `delta` bytes, both the csum start and hdr_len move by delta.
 */
export function shiftVnetHeader(a: Uint8Array, i: number, delta: number): void {
  const p = i * VNET_HDR_LEN;
  if (a[p] & VIRTIO_NET_HDR_F_NEEDS_CSUM) setU16(a, p + 6, u16(a, p + 6) + delta);
  if (a[p + 1] !== VIRTIO_NET_HDR_GSO_NONE) setU16(a, p + 2, u16(a, p + 2) + delta);
}

/** num_buffers (bytes 10-11) is unused on a TUN device; the engine keeps a packet's wire segment count there. */
export function vnetSegments(a: Uint8Array, i: number): number {
  const n = u16(a, i * VNET_HDR_LEN + 10);
  return n === 0 ? 1 : n;
}

/**
 * For packet i just read at buf[off, off+len): on a GSO packet, recompute hdr_len from the packet
 * (the kernel's value is only a hint, and on the forward path it can be the whole packet), and
 * record in num_buffers how many packets it is on the wire. Returns that count (1 when not GSO or
 * when the headers do not parse: the processor then drops or handles it on its own terms).
 */
export function prepareRxVnet(buf: Uint8Array, off: number, len: number, a: Uint8Array, i: number): number {
  const p = i * VNET_HDR_LEN;
  const type = a[p + 1] & 0x7f;
  let segs = 1;
  if (type !== VIRTIO_NET_HDR_GSO_NONE) {
    let cs: number;
    if ((a[p] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) cs = u16(a, p + 6);
    else cs = buf[off] >> 4 === 4 ? (buf[off] & 15) * 4 : 40;
    let hdrs = -1;
    // a UDP-tunnel super-packet (24-byte device header) is segmented by its inner TCP: csum_start
    // is the inner TCP header, and every wire segment repeats the outer and inner headers
    const inner = type & ~(VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4 | VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6);
    const tunnelOk = inner === type || (a[p] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    if (tunnelOk && (inner === VIRTIO_NET_HDR_GSO_TCPV4 || inner === VIRTIO_NET_HDR_GSO_TCPV6)) {
      if (cs + 13 < len) hdrs = cs + (buf[off + cs + 12] >> 4) * 4;
    } else if (inner === type && type === VIRTIO_NET_HDR_GSO_UDP_L4) {
      hdrs = cs + 8;
    }
    const gso = u16(a, p + 4);
    if (hdrs > 0 && hdrs <= len && gso > 0) {
      setU16(a, p + 2, hdrs);
      const payload = len - hdrs;
      segs = payload > gso ? Math.ceil(payload / gso) : 1;
    }
  }
  setU16(a, p + 10, segs);
  return segs;
}
