// GSO segmentation and checksum completion in native code (shared/tun/native/gso_split.c), for
// packets read from a TUN queue with IFF_VNET_HDR: encap mode cannot hand an IP-in-IP super-packet
// to the kernel (virtio_net_hdr has no IPIP GSO type), so it is cut into wire-sized packets with
// complete checksums first; a non-GSO NEEDS_CSUM packet gets its checksum finished before it goes
// inside a tunnel. Also the start-up write probe (a kernel that refuses GSO writes, e.g. Linux
// 6.6.44, tailscale/tailscale#13041, makes the service turn offloads off instead of losing traffic).
import { loadAddon } from './native-tun.js';

/** Headers do not parse, or lengths / csum_start are inconsistent. */
export const GSO_E_MALFORMED = -1;
/** gso_type is not TCPV4/TCPV6/UDP_L4, or does not match the packet. */
export const GSO_E_UNSUPPORTED = -2;
/** A segment would not fit an output slot. */
export const GSO_E_TOO_BIG = -3;
/** Output slots out of range. */
export const GSO_E_ARGS = -4;

export interface GsoAddon {
  /**
   * Cut the super-packet buf[off, off+len) (virtio header at vnet[vnetOff..+12]) into segments,
   * starting at segment number `from`; segment k goes to out at (first + k) * slot + headroom and
   * outOffs/outLens[first + k]. At most `max`. Returns segments written (0 = none left) or GSO_E_*.
   */
  gsoSplit(
    buf: Uint8Array,
    off: number,
    len: number,
    vnet: Uint8Array,
    vnetOff: number,
    out: Uint8Array,
    outOffs: Int32Array,
    outLens: Int32Array,
    slot: number,
    headroom: number,
    first: number,
    max: number,
    from: number,
  ): number;
  /** Finish a NEEDS_CSUM checksum in place (field at csumStart + csumOffset). 0 or GSO_E_MALFORMED. */
  completeChecksum(buf: Uint8Array, off: number, len: number, csumStart: number, csumOffset: number): number;
  /**
   * Write-side GRO (gro.c): merge same-flow TCP segments (tcp 1) / UDP datagrams (udp 1) among
   * packets i < count into GSO super-packets in place (each run grows its first packet up to the
   * end of its `slot`-sized slot in buf); compacts offs/lens/vnet, returns the new count.
   */
  groCoalesce(buf: Uint8Array, offs: Int32Array, lens: Int32Array, vnet: Uint8Array, count: number, slot: number, tcp: number, udp: number): number;
  /**
   * groCoalesce over entries [first, first + count) that lie in one buffer in increasing,
   * non-overlapping order, merging consecutive entries only (each run grows its first packet over
   * the packets it took). Compacts that range; returns its new count.
   */
  groSequence(buf: Uint8Array, offs: Int32Array, lens: Int32Array, vnet: Uint8Array, first: number, count: number, tcp: number, udp: number): number;
  /** Write a 2-segment TCPv6 (udp 0) or UDP_L4 (udp 1) GSO probe from ::1 to ::1; 0 or the errno. */
  writeProbe(fd: number, udp: number): number;
}

let gso: GsoAddon | undefined;

/** The addon's GSO functions (loads the addon on first use; cold path). */
export function gsoAddon(): GsoAddon {
  if (!gso) gso = loadAddon() as unknown as GsoAddon;
  return gso;
}

/**
 * Start-up write probe on a TUN fd of an up device opened with vnetHdr and offloads set: true when
 * the kernel accepts a GSO write. The probe packet is a martian (::1 -> ::1) and is dropped by the
 * kernel after the write succeeded. Returns the errno of a refused write, 0 when accepted.
 */
export function gsoWriteProbe(fd: number, udp: boolean): number {
  return gsoAddon().writeProbe(fd, udp ? 1 : 0);
}
