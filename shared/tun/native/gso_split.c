/*
 * GSO segmentation and checksum completion (see gso_split.h). The same job as the kernel's
 * tcp_gso_segment/__udp_gso_segment and wireguard-go's gsoSplit, for packets in user space.
 */
#include "gso_split.h"

#include <string.h>
#include "bytes.h"

#define PROTO_HOPOPTS 0
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ROUTING 43
#define PROTO_DSTOPTS 60

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80


static inline uint32_t fold32(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return (uint32_t)s;
}

/*
 * RFC 1071: summing native-order words and byte-swapping the folded result equals the big-endian
 * sum. 32-bit loads into a 64-bit accumulator (no carry loss below 2^32 words).
 */
uint32_t mslb_csum_sum(const uint8_t *p, size_t n) {
  uint64_t a = 0, b = 0;
  uint32_t w0, w1, w2, w3;
  while (n >= 16) {
    memcpy(&w0, p, 4);
    memcpy(&w1, p + 4, 4);
    memcpy(&w2, p + 8, 4);
    memcpy(&w3, p + 12, 4);
    a += (uint64_t)w0 + w1;
    b += (uint64_t)w2 + w3;
    p += 16;
    n -= 16;
  }
  a += b;
  while (n >= 4) {
    memcpy(&w0, p, 4);
    a += w0;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t h;
    memcpy(&h, p, 2);
    a += h;
    p += 2;
    n -= 2;
  }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  if (n) a += (uint32_t)p[0] << 8;
  return fold32(a);
#else
  if (n) a += p[0]; /* low byte of a little-endian word = high byte of the big-endian one */
  uint32_t s = fold32(a);
  return ((s & 0xff) << 8) | (s >> 8);
#endif
}

/* Unfolded big-endian sum of an address field (4 or 16 bytes). */
static uint32_t sum_addr(const uint8_t *p, int bytes) {
  uint32_t s = 0;
  for (int i = 0; i < bytes; i += 2) s += be16(p + i);
  return s;
}

int mslb_csum_complete(uint8_t *pkt, uint32_t len, uint32_t csum_start, uint32_t csum_offset) {
  if (csum_start >= len || (uint64_t)csum_start + csum_offset + 2 > len) return GSO_E_MALFORMED;
  uint32_t c = ~mslb_csum_sum(pkt + csum_start, len - csum_start) & 0xffff;
  if (c == 0) c = 0xffff;
  put16(pkt + csum_start + csum_offset, c);
  return 0;
}

/* Where the upper layer starts and which protocol it is. */
typedef struct {
  int v6;
  uint32_t ip_len; /* IP total length (<= read length) */
  uint32_t l4;     /* offset of the TCP/UDP header */
  int proto;
} l3_info;

static int parse_l3(const uint8_t *pkt, uint32_t len, l3_info *o) {
  if (len < 1) return GSO_E_MALFORMED;
  int v = pkt[0] >> 4;
  if (v == 4) {
    if (len < 20) return GSO_E_MALFORMED;
    uint32_t ihl = (uint32_t)(pkt[0] & 15) * 4;
    uint32_t tot = be16(pkt + 2);
    if (ihl < 20 || tot < ihl || tot > len) return GSO_E_MALFORMED;
    if (be16(pkt + 6) & 0x3fff) return GSO_E_MALFORMED; /* MF or a fragment offset: never GSO */
    o->v6 = 0;
    o->ip_len = tot;
    o->l4 = ihl;
    o->proto = pkt[9];
    return 0;
  }
  if (v == 6) {
    if (len < 40) return GSO_E_MALFORMED;
    uint32_t pl = be16(pkt + 4);
    if (pl == 0 || 40 + pl > len) return GSO_E_MALFORMED; /* 0: jumbogram / BIG TCP, not handled */
    uint32_t end = 40 + pl, p = 40;
    int nh = pkt[6];
    for (int n = 0; n < 8 && (nh == PROTO_HOPOPTS || nh == PROTO_ROUTING || nh == PROTO_DSTOPTS); n++) {
      if (p + 2 > end) return GSO_E_MALFORMED;
      uint32_t hl = ((uint32_t)pkt[p + 1] + 1) * 8;
      if (p + hl > end) return GSO_E_MALFORMED;
      nh = pkt[p];
      p += hl;
    }
    o->v6 = 1;
    o->ip_len = end;
    o->l4 = p;
    o->proto = nh;
    return 0;
  }
  return GSO_E_MALFORMED;
}

/* Unfolded pseudo-header sum without the length (added per segment). */
static uint32_t pseudo_base(const uint8_t *pkt, const l3_info *l3) {
  if (l3->v6) return sum_addr(pkt + 8, 32) + (uint32_t)l3->proto;
  return sum_addr(pkt + 12, 8) + (uint32_t)l3->proto;
}

int mslb_gso_split(const uint8_t *pkt, uint32_t len, const uint8_t *vh, uint8_t *out, size_t out_size,
                   uint32_t slot, uint32_t headroom, uint32_t first, uint32_t max, uint32_t from,
                   int32_t *offs, int32_t *lens, uint32_t *total) {
  if (slot <= headroom) return GSO_E_ARGS;
  int gso_type = vh[1] & ~VNET_GSO_ECN;
  uint32_t gso = le16(vh + 4);
  l3_info l3;
  int r = parse_l3(pkt, len, &l3);
  if (r < 0) return r;
  if ((vh[0] & VNET_F_NEEDS_CSUM) && le16(vh + 6) != l3.l4) return GSO_E_MALFORMED;
  int tcp;
  if (gso_type == VNET_GSO_TCPV4 && !l3.v6 && l3.proto == PROTO_TCP) tcp = 1;
  else if (gso_type == VNET_GSO_TCPV6 && l3.v6 && l3.proto == PROTO_TCP) tcp = 1;
  else if (gso_type == VNET_GSO_UDP_L4 && l3.proto == PROTO_UDP) tcp = 0;
  else return GSO_E_UNSUPPORTED;
  uint32_t l4hdr;
  if (tcp) {
    if (l3.l4 + 20 > l3.ip_len) return GSO_E_MALFORMED;
    l4hdr = (uint32_t)(pkt[l3.l4 + 12] >> 4) * 4;
    if (l4hdr < 20) return GSO_E_MALFORMED;
  } else {
    l4hdr = 8;
  }
  uint32_t hdrs = l3.l4 + l4hdr;
  if (hdrs > l3.ip_len || gso == 0) return GSO_E_MALFORMED;
  uint32_t payload = l3.ip_len - hdrs;
  uint32_t nseg = payload == 0 ? 1 : (payload + gso - 1) / gso;
  if (total) *total = nseg;
  if (from >= nseg) return 0;
  uint32_t biggest = hdrs + (payload < gso ? payload : gso);
  if (biggest > slot - headroom) return GSO_E_TOO_BIG;
  if ((uint64_t)(first + (max < nseg - from ? max : nseg - from)) * slot > out_size) return GSO_E_ARGS;

  const uint32_t ph = pseudo_base(pkt, &l3);
  const uint32_t id0 = be16(pkt + 4);
  const uint32_t seq0 = tcp ? be32(pkt + l3.l4 + 4) : 0;
  const uint8_t flags0 = tcp ? pkt[l3.l4 + 13] : 0;
  const uint32_t ck = l3.l4 + (tcp ? 16 : 6);
  uint32_t produced = 0;
  for (uint32_t s = from; s < nseg && produced < max; s++, produced++) {
    uint32_t k = first + produced;
    uint8_t *d = out + (size_t)k * slot + headroom;
    uint32_t start = hdrs + s * gso;
    uint32_t plen = payload - s * gso;
    if (plen > gso) plen = gso;
    uint32_t seglen = hdrs + plen;
    memcpy(d, pkt, hdrs);
    memcpy(d + hdrs, pkt + start, plen);
    if (l3.v6) {
      put16(d + 4, seglen - 40);
    } else {
      put16(d + 2, seglen);
      put16(d + 4, (id0 + s) & 0xffff);
      d[10] = d[11] = 0;
      put16(d + 10, ~mslb_csum_sum(d, l3.l4) & 0xffff);
    }
    uint32_t l4len = seglen - l3.l4;
    if (tcp) {
      put32(d + l3.l4 + 4, seq0 + s * gso);
      uint8_t f = flags0;
      if (s + 1 != nseg) f &= (uint8_t)~(TCP_FIN | TCP_PSH);
      if (s != 0) f &= (uint8_t)~TCP_CWR;
      d[l3.l4 + 13] = f;
    } else {
      put16(d + l3.l4 + 4, l4len);
    }
    d[ck] = d[ck + 1] = 0;
    uint64_t sum = (uint64_t)ph + l4len + mslb_csum_sum(d + l3.l4, l4len);
    uint32_t c = ~fold32(sum) & 0xffff;
    if (c == 0 && !tcp) c = 0xffff; /* UDP: 0 means "no checksum" */
    put16(d + ck, c);
    offs[k] = (int32_t)((size_t)k * slot + headroom);
    lens[k] = (int32_t)seglen;
  }
  return (int)produced;
}

uint32_t mslb_gso_probe_packet(uint8_t *buf, uint8_t *vh, int udp) {
  const uint32_t l4hdr = udp ? 8 : 20, gso = 100, payload = 2 * gso;
  const uint32_t len = 40 + l4hdr + payload;
  memset(buf, 0, len);
  buf[0] = 0x60;
  put16(buf + 4, len - 40);
  buf[6] = udp ? PROTO_UDP : PROTO_TCP;
  buf[7] = 1;
  buf[23] = 1; /* ::1 */
  buf[39] = 1; /* ::1 */
  uint8_t *l4 = buf + 40;
  put16(l4, 9);     /* discard */
  put16(l4 + 2, 9); /* discard */
  if (udp) {
    put16(l4 + 4, l4hdr + payload);
  } else {
    put32(l4 + 4, 1);
    l4[12] = 5 << 4;
    l4[13] = 0x10; /* ACK */
    put16(l4 + 14, 65535);
  }
  uint32_t ph = sum_addr(buf + 8, 32) + (uint32_t)buf[6] + (len - 40);
  put16(l4 + (udp ? 6 : 16), fold32(ph));
  memset(vh, 0, 12);
  vh[0] = VNET_F_NEEDS_CSUM;
  vh[1] = udp ? VNET_GSO_UDP_L4 : VNET_GSO_TCPV6;
  uint32_t hl = 40 + l4hdr;
  vh[2] = (uint8_t)hl;
  vh[3] = (uint8_t)(hl >> 8);
  vh[4] = (uint8_t)gso;
  vh[5] = (uint8_t)(gso >> 8);
  vh[6] = 40;
  vh[8] = (uint8_t)(udp ? 6 : 16);
  return len;
}
