/*
 * GSO super-packet segmentation and checksum completion for TUN packets read with IFF_VNET_HDR.
 * Pure C (no N-API, no libuv): gso_napi.c exposes it to JS, the unit tests drive it through that.
 *
 * Why: a TCPV4/TCPV6/UDP_L4 super-packet can be handed back to the kernel as it is (translate
 * mode), but once it is wrapped in an outer IPv4/IPv6 header (encap mode) no virtio_net_hdr
 * gso_type can describe it, so it has to be cut into wire-sized packets first, each with complete
 * checksums. The same for a non-GSO NEEDS_CSUM packet: its L4 field holds only the pseudo-header
 * sum, which must be finished before the packet disappears inside a tunnel.
 */
#ifndef MSLB_GSO_SPLIT_H
#define MSLB_GSO_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* Errors (negative return values). */
#define GSO_E_MALFORMED -1   /* headers do not parse, lengths or csum_start inconsistent */
#define GSO_E_UNSUPPORTED -2 /* gso_type not TCPV4/TCPV6/UDP_L4, or a protocol/type mismatch */
#define GSO_E_TOO_BIG -3     /* a segment would not fit in an output slot */
#define GSO_E_ARGS -4        /* output slots out of range */

/* virtio_net_hdr fields (12-byte header, little-endian as on x86 hosts). */
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_UDP 3
#define VNET_GSO_TCPV6 4
#define VNET_GSO_UDP_L4 5
#define VNET_GSO_ECN 0x80

/*
 * Cut the super-packet pkt[0, len) described by the 12-byte virtio header vh into segments of at
 * most gso_size payload bytes, starting with segment number `from` (0-based, to continue a split
 * that ran out of slots). Segment k of this call is written to out + (first + k) * slot + headroom,
 * offs[first + k] / lens[first + k] get its offset in out and its length. At most `max` segments.
 * Every segment gets: its own IPv4 total length, ID (first ID + segment number) and header
 * checksum, or IPv6 payload length; TCP sequence number advanced by the payload before it, FIN and
 * PSH only on the last segment, CWR only on the first; UDP length; a complete L4 checksum.
 * Returns the number of segments written (0 when `from` is past the last one) or a GSO_E_* error.
 * *total (if not NULL) receives the super-packet's segment count.
 */
int mslb_gso_split(const uint8_t *pkt, uint32_t len, const uint8_t *vh, uint8_t *out, size_t out_size,
                   uint32_t slot, uint32_t headroom, uint32_t first, uint32_t max, uint32_t from,
                   int32_t *offs, int32_t *lens, uint32_t *total);

/*
 * Finish a NEEDS_CSUM packet in place: the 16-bit field at csum_start + csum_offset holds the
 * pseudo-header sum; store ~fold(sum of pkt[csum_start, len)) there (0 is sent as 0xFFFF, as Linux
 * skb_checksum_help does). Returns 0, or GSO_E_MALFORMED when the field is outside the packet.
 */
int mslb_csum_complete(uint8_t *pkt, uint32_t len, uint32_t csum_start, uint32_t csum_offset);

/* Folded (16-bit, not complemented) ones' complement sum of p[0, n) as big-endian words. */
uint32_t mslb_csum_sum(const uint8_t *p, size_t n);

/*
 * Build the start-up write probe into buf (>= 512 bytes): a 2-segment TCPv6 (udp = 0) or UDP/IPv6
 * (udp = 1) GSO packet from ::1 to ::1 (a martian on any non-loopback device, so the kernel drops it
 * after accepting the write) with its virtio header in vh. Returns the packet length.
 */
uint32_t mslb_gso_probe_packet(uint8_t *buf, uint8_t *vh, int udp);

#endif
