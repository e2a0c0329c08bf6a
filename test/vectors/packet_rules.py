"""Packet rules the scapy generators share: how SPEC 3-5 and the RFCs fix the fields of what mslb
writes (outer headers, ICMP errors, translated packets), written independently of the TypeScript code.
Imported by test/fixtures/make_processor_fixtures.py and test/vectors/make_draft_vectors.py.
"""
from scapy.all import IP, IPv6, TCP, UDP, ICMP, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, PadN, HBHOptUnknown, Raw
from socket import inet_pton, AF_INET6

LBSP = 0x1E


def h(p):
    return bytes(p).hex()


def a6(s):
    return inet_pton(AF_INET6, s)


def fresh(p):
    """Rebuild with every length and checksum computed by scapy from scratch."""
    p = p.copy()
    q = p
    while q is not None and q.name != 'NoPayload' and not isinstance(q, Raw):
        for f in ('chksum', 'cksum', 'len', 'plen', 'ihl'):
            if f in q.fields and not (f == 'chksum' and isinstance(q, UDP) and q.chksum == 0 and isinstance(q.underlayer, IP)):
                delattr(q, f)  # (del, not fields.pop: that would leave scapy's cached raw bytes in force)
        if (isinstance(q, IP) and (q.flags.MF or q.frag)) or isinstance(q, IPv6ExtHdrFragment):
            break  # a fragment's upper-layer header covers the whole datagram: leave it as it is
        q = q.payload if q.payload else None
    b = bytes(p)
    return IPv6(b) if b[0] >> 4 == 6 else IP(b)


# ---- RFC 6438 outer flow label (SPEC 3): murmur3 over the inner flow ------------------------
M32 = 0xffffffff


def _imul(a, b):
    return (a * b) & M32


def _mix(hh, k):
    k = _imul(k, 0xcc9e2d51)
    k = ((k << 15) | (k >> 17)) & M32
    k = _imul(k, 0x1b873593)
    hh ^= k
    hh = ((hh << 13) | (hh >> 19)) & M32
    return (_imul(hh, 5) + 0xe6546b64) & M32


def flow_hash(inner):
    """Inner src, dst (words), ports (unless a fragment / no TCP-UDP), protocol << 20 | inner label."""
    b = bytes(inner)
    v = b[0] >> 4
    if v == 4:
        ihl = (b[0] & 15) * 4
        words = [(int.from_bytes(b[12:16], 'big'), int.from_bytes(b[16:20], 'big'))]
        proto, l4, label = b[9], ihl, 0
        frag = (int.from_bytes(b[6:8], 'big') & 0x3fff) != 0
    else:
        words = [(int.from_bytes(b[8 + 4 * i:12 + 4 * i], 'big'), int.from_bytes(b[24 + 4 * i:28 + 4 * i], 'big')) for i in range(4)]
        proto, l4, label = b[6], 40, int.from_bytes(b[1:4], 'big') & 0xfffff
        frag = proto == 44
        while proto in (0, 60, 43):  # walk extension headers to the upper layer
            proto, l4 = b[l4], l4 + (b[l4 + 1] + 1) * 8
        if proto == 44:
            frag = True
            proto = b[l4]
    hh = 0x9747b28c
    for s, d in words:
        hh = _mix(hh, s)
        hh = _mix(hh, d)
    ports = 0
    if not frag and proto in (6, 17):
        ports = int.from_bytes(b[l4:l4 + 4], 'big')
    hh = _mix(hh, ports)
    hh = _mix(hh, ((proto << 20) | label) & M32)
    hh ^= hh >> 16
    hh = _imul(hh, 0x85ebca6b)
    hh ^= hh >> 13
    hh = _imul(hh, 0xc2b2ae35)
    hh ^= hh >> 16
    lab = (hh ^ (hh >> 20)) & 0xfffff
    return lab if lab else 1


class Ids:
    """The worker's outer IPv4 ID and IPv6 fragment ID sequences (seeded from the clock)."""

    def __init__(self, seed):
        self.ip = seed & 0xffff
        self.frag = (seed * 0x9e3779b1) & M32

    def next_ip(self):
        self.ip = (self.ip + 1) & 0xffff
        return self.ip

    def next_frag(self):
        self.frag = (self.frag + 1) & M32
        return self.frag


def tos_of(inner):
    b = bytes(inner)
    return b[1] if b[0] >> 4 == 4 else ((b[0] & 15) << 4) | (b[1] >> 4)


def wrap(inner, outer_v, src, dst, hop=65, ids=None):
    """Outer header per RFC 2473 / 2003 as SPEC 3 fixes its fields."""
    inner = fresh(inner)
    nh = 4 if bytes(inner)[0] >> 4 == 4 else 41
    if outer_v == 6:
        return fresh(IPv6(src=src, dst=dst, hlim=hop, tc=tos_of(inner), fl=flow_hash(inner), nh=nh) / inner)
    df = nh == 41 or inner[IP].flags.DF
    return fresh(IP(src=src, dst=dst, ttl=hop, tos=tos_of(inner), id=ids.next_ip(), flags='DF' if df else 0, proto=nh) / inner)


def translated(p, dst, hop_delta=1):
    q = fresh(p).copy()
    if IPv6 in q and q.version == 6:
        q[IPv6].dst = dst
        q[IPv6].hlim += hop_delta
    else:
        q[IP].dst = dst
        q[IP].ttl += hop_delta
    return fresh(q)


def err6(icmpl, offender, src):
    return fresh(IPv6(src=src, dst=offender[IPv6].src, hlim=64) / icmpl / Raw(bytes(offender)[:1280 - 48]))


def err4(typ, code, mtu, offender, src, ipid):
    extra = {'nexthopmtu': mtu} if typ == 3 else {}
    return fresh(IP(src=src, dst=offender[IP].src, ttl=64, tos=0xc0, id=ipid, flags=0) / ICMP(type=typ, code=code, **extra) / Raw(bytes(offender)[:576 - 28]))


def lbsp_opt(client, server, dlen=32):
    data = (a6(client) + a6(server))[:dlen] if dlen <= 32 else a6(client) + a6(server) + bytes(dlen - 32)
    return IPv6ExtHdrDestOpt(options=[PadN(optdata=b'\0\0'), HBHOptUnknown(otype=LBSP, optdata=data)])
