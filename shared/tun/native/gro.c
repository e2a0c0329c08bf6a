/*
 * GRO on the write side of a TUN queue (the mirror of gso_split.c; wireguard-go's handleGRO does
 * the same): among the packets about to be written, runs of same-flow TCP segments or UDP
 * datagrams are merged into one GSO super-packet (TCPV4/TCPV6/UDP_L4 virtio header, NEEDS_CSUM
 * with the pseudo-header partial sum), so the kernel takes N wire packets in one write() and
 * forwards them as one skb; it cuts them back into the same segments where it must (a NIC without
 * TSO, a socket without GRO). Merging is in place: a run's payloads are appended to its first
 * packet, which has room up to the end of its slot.
 *
 * A packet joins a run only when the kernel would have merged it too (Linux tcp_gro_receive /
 * udp_gro_receive rules): same addresses, ports, IP version and header fields that the
 * segmentation copies (TOS/traffic class, TTL/hop limit, DF, flow label), no IP options or
 * extension headers, not a fragment; TCP: next sequence number, same ACK, window, data offset and
 * options, only ACK (and PSH, which ends the run); UDP: equal datagram sizes (the last may be
 * shorter and ends the run); IPv4 IDs consecutive. A packet whose checksum the kernel has not
 * vouched for (neither NEEDS_CSUM nor DATA_VALID) is verified first: a corrupt packet is never
 * given a fresh valid checksum.
 */
#include <string.h>

#include "gro.h"
#include "gso_split.h"
#include "bytes.h"

#define F_DATA_VALID 2
#define P_TCP 6
#define P_UDP 17
#define TCP_ACK 0x10
#define TCP_PSH 0x08
#define MAX_OPEN 8
#define MAX_SEGS 64
#define MAX_TOTAL 65535

static inline uint32_t fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint32_t)s;
}

/* What a candidate looks like, computed once per packet. */
typedef struct {
  int ok;       /* a candidate at all */
  int v6, tcp;
  uint32_t l4;  /* L4 header offset */
  uint32_t hdrs; /* all headers */
  uint32_t plen; /* payload bytes */
  uint32_t ip_len;
} cand;

static uint32_t addr_sum(const uint8_t *p, int n) {
  uint32_t s = 0;
  for (int i = 0; i < n; i += 2) s += be16(p + i);
  return s;
}

/* Full L4 checksum check of a complete packet (sum over pseudo-header + segment == 0xFFFF). */
static int l4_valid(const uint8_t *p, const cand *c) {
  uint32_t l4len = c->ip_len - c->l4;
  uint64_t s = c->v6 ? addr_sum(p + 8, 32) : addr_sum(p + 12, 8);
  s += (uint32_t)(c->tcp ? P_TCP : P_UDP) + l4len;
  s += mslb_csum_sum(p + c->l4, l4len);
  return fold(s) == 0xffff;
}

static void classify(const uint8_t *p, uint32_t len, const uint8_t *vh, int want_tcp, int want_udp, cand *c) {
  c->ok = 0;
  if (vh[1] != VNET_GSO_NONE || len < 20) return;
  int v = p[0] >> 4;
  int proto;
  if (v == 4) {
    if ((p[0] & 15) != 5) return; /* options */
    uint32_t tot = be16(p + 2);
    if (tot < 28 || tot > len) return;
    if (be16(p + 6) & 0x3fff) return; /* MF or offset */
    c->v6 = 0;
    c->l4 = 20;
    c->ip_len = tot;
    proto = p[9];
  } else if (v == 6) {
    if (len < 48) return;
    uint32_t tot = 40 + be16(p + 4);
    if (tot > len || tot < 48) return;
    c->v6 = 1;
    c->l4 = 40;
    c->ip_len = tot;
    proto = p[6];
  } else {
    return;
  }
  if (proto == P_TCP && want_tcp) {
    if (c->ip_len < c->l4 + 20) return;
    const uint8_t *t = p + c->l4;
    uint32_t doff = (uint32_t)(t[12] >> 4) * 4;
    if (doff < 20 || c->l4 + doff > c->ip_len) return;
    if ((t[13] & ~(TCP_ACK | TCP_PSH)) != 0 || !(t[13] & TCP_ACK)) return; /* only ACK [+PSH] */
    if (t[12] & 0x0f) return; /* reserved / AE bit */
    c->tcp = 1;
    c->hdrs = c->l4 + doff;
  } else if (proto == P_UDP && want_udp) {
    const uint8_t *u = p + c->l4;
    if (be16(u + 4) != c->ip_len - c->l4) return;
    if (!c->v6 && be16(u + 6) == 0) return; /* no checksum: keep it as it is */
    c->tcp = 0;
    c->hdrs = c->l4 + 8;
  } else {
    return;
  }
  c->plen = c->ip_len - c->hdrs;
  if (c->plen == 0) return;
  if (!(vh[0] & (VNET_F_NEEDS_CSUM | F_DATA_VALID)) && !l4_valid(p, c)) return;
  c->ok = 1;
}

/* b may follow a (same flow, header fields the segmentation copies, sequence). */
static int follows(const uint8_t *a, const cand *ca, uint32_t a_len_total_payload_end_seq, const uint8_t *b, const cand *cb,
                   uint32_t gso, uint32_t a_last_id) {
  if (ca->v6 != cb->v6 || ca->tcp != cb->tcp || ca->hdrs != cb->hdrs) return 0;
  if (cb->plen > gso) return 0;
  if (ca->v6) {
    /* version/traffic class/flow label, next header, hop limit, addresses */
    if (memcmp(a, b, 4) != 0 || a[6] != b[6] || a[7] != b[7] || memcmp(a + 8, b + 8, 32) != 0) return 0;
  } else {
    if (a[1] != b[1] || (a[6] & 0x40) != (b[6] & 0x40) || a[8] != b[8] || a[9] != b[9] || memcmp(a + 12, b + 12, 8) != 0)
      return 0;
    if (be16(b + 4) != ((a_last_id + 1) & 0xffff)) return 0;
  }
  const uint8_t *ta = a + ca->l4, *tb = b + cb->l4;
  if (memcmp(ta, tb, 4) != 0) return 0; /* ports */
  if (ca->tcp) {
    if (be32(tb + 4) != a_len_total_payload_end_seq) return 0; /* next sequence number */
    if (memcmp(ta + 8, tb + 8, 5) != 0) return 0;              /* ack, data offset */
    if (ta[13] & TCP_PSH) return 0;                             /* the run already ended */
    if (memcmp(ta + 14, tb + 14, 2) != 0) return 0;             /* window */
    if (memcmp(ta + 20, tb + 20, ca->hdrs - ca->l4 - 20) != 0) return 0; /* options (timestamps) */
  }
  return 1;
}

/*
 * Could p (any packet, candidate or not) belong to the flow of the run headed by `head`? Then the
 * run must end before p, or a later packet of the flow would overtake p. Conservative: a packet
 * whose ports cannot be read counts as the same flow when addresses and protocol match.
 */
static int same_flow(const uint8_t *head, const cand *hc, const uint8_t *p, uint32_t len) {
  if (len < 20) return 0;
  int v = p[0] >> 4;
  uint32_t l4;
  int proto, frag;
  if (hc->v6) {
    if (v != 6 || len < 40 || memcmp(head + 8, p + 8, 32) != 0) return 0;
    proto = p[6];
    l4 = 40;
    frag = 0;
  } else {
    if (v != 4 || memcmp(head + 12, p + 12, 8) != 0) return 0;
    proto = p[9];
    l4 = (uint32_t)(p[0] & 15) * 4;
    frag = (be16(p + 6) & 0x1fff) != 0;
  }
  if (proto != (hc->tcp ? P_TCP : P_UDP)) {
    /* IPv6 with extension headers hides the protocol: cannot tell */
    return hc->v6 && (proto == 0 || proto == 43 || proto == 44 || proto == 60 || proto == 51);
  }
  if (frag || l4 + 4 > len) return 1;
  return memcmp(head + hc->l4, p + l4, 4) == 0;
}

typedef struct {
  int32_t idx;     /* packet index of the run's head (its output position) */
  uint32_t segs;   /* packets merged */
  uint32_t gso;    /* payload of the first */
  uint32_t end_seq;
  uint32_t last_id;
  uint32_t total;  /* current IP total length */
  int closed;      /* last packet was short (UDP) or had PSH (TCP) */
  cand c;
} run_t;

static void finish(uint8_t *head, run_t *r, uint8_t *vh) {
  if (r->segs < 2) return;
  const cand *c = &r->c;
  uint32_t total = r->total;
  if (c->v6) {
    put16(head + 4, total - 40);
  } else {
    put16(head + 2, total);
    head[10] = head[11] = 0;
    put16(head + 10, ~mslb_csum_sum(head, 20) & 0xffff);
  }
  uint32_t l4len = total - c->l4;
  uint8_t *t = head + c->l4;
  if (!c->tcp) put16(t + 4, l4len);
  uint32_t ps = c->v6 ? addr_sum(head + 8, 32) : addr_sum(head + 12, 8);
  ps += (uint32_t)(c->tcp ? P_TCP : P_UDP) + l4len;
  put16(t + (c->tcp ? 16 : 6), fold(ps));
  memset(vh, 0, 12);
  vh[0] = VNET_F_NEEDS_CSUM;
  vh[1] = c->tcp ? (c->v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4) : VNET_GSO_UDP_L4;
  vh[2] = (uint8_t)c->hdrs;
  vh[3] = (uint8_t)(c->hdrs >> 8);
  vh[4] = (uint8_t)r->gso;
  vh[5] = (uint8_t)(r->gso >> 8);
  vh[6] = (uint8_t)c->l4;
  vh[8] = c->tcp ? 16 : 6;
  vh[10] = (uint8_t)r->segs; /* the engine's segment count (num_buffers, unused by TUN) */
  vh[11] = (uint8_t)(r->segs >> 8);
}

int mslb_gro(uint8_t *buf, size_t buf_len, int32_t *offs, int32_t *lens, uint8_t *vnet, uint32_t count, uint32_t slot,
             int tcp, int udp) {
  run_t open[MAX_OPEN];
  int nopen = 0;
  int32_t out = 0;
  for (uint32_t i = 0; i < count; i++) {
    int32_t off = offs[i], len = lens[i];
    uint8_t *vh = vnet + (size_t)i * 12;
    if (off < 0 || len <= 0 || (size_t)off + (size_t)len > buf_len) {
      /* leave it for the writer to count as a drop */
      offs[out] = off;
      lens[out] = len;
      if ((uint32_t)out != i) memcpy(vnet + (size_t)out * 12, vh, 12);
      out++;
      continue;
    }
    uint8_t *p = buf + off;
    cand c;
    classify(p, (uint32_t)len, vh, tcp, udp, &c);
    int merged = 0;
    for (int r = 0; r < nopen; r++) {
      run_t *o = &open[r];
      if (o->closed) continue;
      uint8_t *head = buf + offs[o->idx];
      if (!same_flow(head, &o->c, p, (uint32_t)len)) continue;
      /* p is of this run's flow: it joins the run, or the run ends here (order within a flow) */
      int fits = !merged && c.ok && o->segs < MAX_SEGS && follows(head, &o->c, o->end_seq, p, &c, o->gso, o->last_id);
      if (fits) {
        /* room in the head's slot, and the IP length limit */
        size_t slot_end = ((size_t)offs[o->idx] / slot + 1) * slot;
        fits = (size_t)offs[o->idx] + o->total + c.plen <= slot_end && o->total + c.plen <= MAX_TOTAL;
      }
      if (!fits) {
        o->closed = 1;
        continue;
      }
      {
        memcpy(head + o->total, p + c.hdrs, c.plen);
        o->total += c.plen;
        o->segs++;
        o->end_seq += c.plen;
        o->last_id = c.v6 ? 0 : be16(p + 4);
        if (c.plen < o->gso) o->closed = 1;
        if (c.tcp && (p[c.l4 + 13] & TCP_PSH)) {
          head[o->c.l4 + 13] |= TCP_PSH;
          o->closed = 1;
        }
        merged = 1;
      }
    }
    if (merged) continue;
    /* a new output packet (and a new run when it is a candidate) */
    offs[out] = off;
    lens[out] = len;
    if ((uint32_t)out != i) memcpy(vnet + (size_t)out * 12, vh, 12);
    if (c.ok) {
      if (nopen == MAX_OPEN) {
        /* retire a finished run, else the oldest */
        int k = 0;
        while (k < nopen && !open[k].closed) k++;
        if (k == nopen) k = 0;
        finish(buf + offs[open[k].idx], &open[k], vnet + (size_t)open[k].idx * 12);
        lens[open[k].idx] = (int32_t)open[k].total;
        memmove(open + k, open + k + 1, sizeof open[0] * (size_t)(nopen - k - 1));
        nopen--;
      }
      run_t *o = &open[nopen++];
      o->idx = out;
      o->segs = 1;
      o->gso = c.plen;
      o->end_seq = c.tcp ? be32(p + c.l4 + 4) + c.plen : 0;
      o->last_id = c.v6 ? 0 : be16(p + 4);
      o->total = c.ip_len;
      o->closed = c.tcp && (p[c.l4 + 13] & TCP_PSH);
      o->c = c;
      lens[out] = (int32_t)c.ip_len; /* trailing bytes beyond the IP length are not sent */
    }
    out++;
  }
  for (int r = 0; r < nopen; r++) {
    finish(buf + offs[open[r].idx], &open[r], vnet + (size_t)open[r].idx * 12);
    lens[open[r].idx] = (int32_t)open[r].total;
  }
  return out;
}

/*
 * The same merge over entries [first, first + count) that lie in one buffer in increasing,
 * non-overlapping order (the inner packets a tunnel super-packet was cut and unwrapped into): only
 * consecutive entries join a run, so a run's head grows over the bytes of the packets it has
 * already taken and never reaches a packet still to come (memmove: the source may overlap).
 */
int mslb_gro_seq(uint8_t *buf, size_t buf_len, int32_t *offs, int32_t *lens, uint8_t *vnet, uint32_t first,
                 uint32_t count, int tcp, int udp) {
  run_t r;
  int open = 0;
  uint32_t out = first;
  size_t prev_end = 0;
  for (uint32_t i = first; i < first + count; i++) {
    int32_t off = offs[i], len = lens[i];
    uint8_t *vh = vnet + (size_t)i * 12;
    int in_range = off >= 0 && len > 0 && (size_t)off + (size_t)len <= buf_len;
    cand c;
    c.ok = 0;
    if (in_range) classify(buf + off, (uint32_t)len, vh, tcp, udp, &c);
    if (open && in_range && (size_t)off >= prev_end) {
      uint8_t *head = buf + offs[r.idx];
      uint8_t *p = buf + off;
      if (!r.closed && c.ok && r.segs < MAX_SEGS && follows(head, &r.c, r.end_seq, p, &c, r.gso, r.last_id) &&
          (size_t)offs[r.idx] + r.total + c.plen <= (size_t)off + (size_t)len && r.total + c.plen <= MAX_TOTAL) {
        /* p's own headers may lie where its payload goes: read them before the move */
        uint32_t id = c.v6 ? 0 : be16(p + 4);
        int psh = c.tcp && (p[c.l4 + 13] & TCP_PSH);
        memmove(head + r.total, p + c.hdrs, c.plen);
        r.total += c.plen;
        r.segs++;
        r.end_seq += c.plen;
        r.last_id = id;
        if (c.plen < r.gso) r.closed = 1;
        if (psh) {
          head[r.c.l4 + 13] |= TCP_PSH;
          r.closed = 1;
        }
        prev_end = (size_t)off + (size_t)len;
        continue;
      }
    }
    if (open) {
      finish(buf + offs[r.idx], &r, vnet + (size_t)r.idx * 12);
      lens[r.idx] = (int32_t)r.total;
      open = 0;
    }
    offs[out] = off;
    lens[out] = len;
    if (out != i) memcpy(vnet + (size_t)out * 12, vh, 12);
    if (in_range) prev_end = (size_t)off + (size_t)len;
    if (c.ok) {
      const uint8_t *p = buf + off;
      open = 1;
      r.idx = (int32_t)out;
      r.segs = 1;
      r.gso = c.plen;
      r.end_seq = c.tcp ? be32(p + c.l4 + 4) + c.plen : 0;
      r.last_id = c.v6 ? 0 : be16(p + 4);
      r.total = c.ip_len;
      r.closed = c.tcp && (p[c.l4 + 13] & TCP_PSH);
      r.c = c;
      lens[out] = (int32_t)c.ip_len;
    }
    out++;
  }
  if (open) {
    finish(buf + offs[r.idx], &r, vnet + (size_t)r.idx * 12);
    lens[r.idx] = (int32_t)r.total;
  }
  return (int)(out - first);
}
