/**
 * What parsePacket learned about one packet. One instance is allocated per worker and reused for
 * every packet (the hot path allocates nothing). Every offset is relative to the packet start
 * (`off` passed to parsePacket), so the same info stays valid if the caller knows where the packet is.
 */
export class PacketInfo {
  /** 4 or 6. */
  version = 0;
  /** IP header + extension headers up to the upper layer (where the walk stopped). */
  hdrLen = 0;
  /** Packet length as the IP header says (IPv4 total length, IPv6 40 + payload length). */
  totalLen = 0;
  /** Upper-layer protocol after the chain walk (50 ESP and 59 stop the walk and are reported here). */
  proto = 0;
  /** Offset of the upper-layer header; -1 when absent (non-first fragment, ESP, 59). */
  l4Off = -1;
  /** Upper-layer length (totalLen - l4Off) when l4Off >= 0, else 0. */
  l4Len = 0;
  /** Offset of the byte that holds `proto` (IPv4: 9; IPv6: 6 or byte 0 of the last extension header). */
  protoFieldOff = 0;
  /** IPv4 MF/offset != 0, or an IPv6 Fragment header is present (also atomic fragments). */
  isFragment = false;
  /** Fragment offset in bytes. */
  fragOffset = 0;
  moreFragments = false;
  /** IPv4: 16-bit ID; IPv6: 32-bit Identification of the Fragment header (unsigned). */
  fragId = 0;
  /** IPv4 DF bit. */
  df = false;
  /** TTL / hop limit. */
  hopLimit = 0;
  /** TOS / traffic class byte (DSCP << 2 | ECN). */
  tclass = 0;
  /** IPv6 flow label (20 bits), 0 for IPv4. */
  flowLabel = 0;
  /** Source address words, network byte order as unsigned numbers; IPv4 in word 0, words 1..3 = 0. */
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** TCP/UDP ports when the upper-layer header is present (else 0). */
  srcPort = 0;
  dstPort = 0;
  /** TCP flags byte (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, ...) when TCP, else 0. */
  tcpFlags = 0;
  /** Destination Options header immediately preceding the upper layer: offset (-1 absent) and length. */
  destOptsOff = -1;
  destOptsLen = 0;
  /** Offset of the LBSP option's 32 data bytes (-1 absent). */
  lbspOff = -1;
  /** 0 none, 1 ok, 2 present but wrong length (callers ignore it and count). */
  lbspStatus = 0;
  /** The header chain holds an Authentication Header (AH covers the headers: nothing may be inserted). */
  hasAh = false;
  /** Segments Left of a Routing header (-1 when there is none). */
  rtSegLeft = -1;
  /** IPv6 extension headers walked (at most MAX_EXT_HEADERS in a packet that parsed). */
  extHeaders = 0;
  /** ICMP / ICMPv6 type and code when that header is present (else -1). */
  icmpType = -1;
  icmpCode = -1;

  /** Reset to the "nothing known" state (parsePacket calls this first). */
  reset(): void {
    this.version = 0;
    this.hdrLen = 0;
    this.totalLen = 0;
    this.proto = 0;
    this.l4Off = -1;
    this.l4Len = 0;
    this.protoFieldOff = 0;
    this.isFragment = false;
    this.fragOffset = 0;
    this.moreFragments = false;
    this.fragId = 0;
    this.df = false;
    this.hopLimit = 0;
    this.tclass = 0;
    this.flowLabel = 0;
    // explicit stores: TypedArray.fill is a call into the runtime, slower for 4 elements
    const s = this.src;
    const d = this.dst;
    s[0] = 0; s[1] = 0; s[2] = 0; s[3] = 0;
    d[0] = 0; d[1] = 0; d[2] = 0; d[3] = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.tcpFlags = 0;
    this.destOptsOff = -1;
    this.destOptsLen = 0;
    this.lbspOff = -1;
    this.lbspStatus = 0;
    this.hasAh = false;
    this.rtSegLeft = -1;
    this.extHeaders = 0;
    this.icmpType = -1;
    this.icmpCode = -1;
  }
}
