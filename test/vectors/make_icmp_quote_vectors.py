#!/usr/bin/python3
"""ICMP errors addressed to a service S about packets its servers sent, built by scapy 2.5.

Run: /usr/bin/python3 test/vectors/make_icmp_quote_vectors.py   (writes test/vectors/icmp-quote.json)

A router on the client's side sends the error to S quoting the server's packet (S -> client). The
front reads the quote (shared/packet/icmp-quote.ts) and steers the error to the back of the quoted
flow (SPEC 2 step 6). Every error type the front steers (ICMPv6 1-4, ICMPv4 3, 11, 12) over every
server packet below; for one type per packet, every quote length from 0 up to the headers + 8 bytes
of upper layer + 16, then every 97th length and the full quote. The status each vector expects is
scapy's: a quote is complete ('ok') when it holds the quoted IP header, its extension headers (the
lengths of scapy's own layers) and 8 bytes beyond them, 'truncated' when cut before that, 'invalid'
when it is not an IP header of the error's family. `translated` (full quotes): the same error as
scapy builds it toward back b1 in translate mode (destination B, hop limit + 1 as the front writes
it: the kernel takes one more on the way out), every checksum computed by scapy.

A vector: {desc, type, family, error (hex), status, src, dst, proto, sport, dport, nonFirst,
translated?, client}.
"""
import json
import os

from scapy.all import (IP, IPv6, TCP, UDP, ICMP, ICMPv6DestUnreach, ICMPv6PacketTooBig,
                       ICMPv6TimeExceeded, ICMPv6ParamProblem, ICMPv6EchoReply,
                       IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                       IPv6ExtHdrFragment, AH, PadN, Raw)

HERE = os.path.dirname(os.path.abspath(__file__))
S6, S4 = '2001:db8:5::80', '192.0.2.80'
C6, C4 = '2001:db8:c1::10', '203.0.113.10'
B6, B4 = '2001:db8:b::1', '198.51.100.1'
R6, R4 = '2001:db8:e0::1', '203.0.113.129'


def pay(n):
    return Raw(bytes((i * 7 + 3) & 255 for i in range(n)))


def v6(*ext, l4=None, n=1400):
    p = IPv6(src=S6, dst=C6, hlim=63, fl=0x12345)
    for e in ext:
        p = p / e
    return p / (l4 if l4 is not None else TCP(sport=80, dport=40000, flags='A', seq=7)) / pay(n)


def v4(l4=None, n=1400, **kw):
    return IP(src=S4, dst=C4, ttl=63, flags='DF', id=0x1234, **kw) / (l4 if l4 is not None else TCP(sport=80, dport=40000, flags='A')) / pay(n)


SERVER6 = {
    'tcp': v6(),
    'udp': v6(l4=UDP(sport=53, dport=40001)),
    'echo_reply': v6(l4=ICMPv6EchoReply(id=9, seq=1), n=100),
    'hbh_dst_rt_frag1_tcp': v6(IPv6ExtHdrHopByHop(options=[PadN(optdata=b'\0\0\0\0')]),
                               IPv6ExtHdrDestOpt(options=[PadN(optdata=b'\0' * 12)]),
                               IPv6ExtHdrRouting(type=0, segleft=0, addresses=[]),
                               IPv6ExtHdrFragment(offset=0, m=1, id=0x77)),
    'ah_udp': v6(AH(nh=17, payloadlen=4, spi=5, seq=1, icv=b'\1' * 12), l4=UDP(sport=53, dport=40001)),
    'frag_nonfirst': IPv6(src=S6, dst=C6, hlim=63) / IPv6ExtHdrFragment(offset=100, m=0, id=0x78, nh=17) / pay(600),
}
SERVER4 = {
    'tcp': v4(),
    'udp': v4(l4=UDP(sport=53, dport=40001)),
    'options_tcp': v4(options=[b'\x01\x01\x01\x00']),
    'frag_nonfirst': IP(src=S4, dst=C4, ttl=63, id=0x99, frag=100, proto=17) / pay(500),
    'echo_reply': v4(l4=ICMP(type=0, id=9, seq=1), n=100),
}
ERR6 = {1: lambda: ICMPv6DestUnreach(code=4), 2: lambda: ICMPv6PacketTooBig(mtu=1280),
        3: lambda: ICMPv6TimeExceeded(code=0), 4: lambda: ICMPv6ParamProblem(code=0, ptr=6)}
ERR4 = {(3, 4): lambda: ICMP(type=3, code=4, nexthopmtu=1400), (3, 1): lambda: ICMP(type=3, code=1),
        (11, 0): lambda: ICMP(type=11, code=0), (12, 0): lambda: ICMP(type=12, code=0)}
QUOTE6 = 1280 - 48
QUOTE4 = 576 - 28


def need(p):
    """Quoted bytes that make a complete quote: IP header + extension headers + 8."""
    if isinstance(p, IP):
        return p.ihl * 4 + 8 if p.ihl else len(bytes(p)) - len(bytes(p.payload)) + 8
    raw = len(bytes(p))
    q = p.payload
    while isinstance(q, (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, IPv6ExtHdrFragment, AH)):
        if isinstance(q, IPv6ExtHdrFragment) and q.offset != 0:
            q = q.payload
            break
        q = q.payload
    return raw - len(bytes(q)) + 8


def flow(p):
    p = p.__class__(bytes(p))  # fields scapy fills in on build (AH's next header) read back
    d = {'src': p.src, 'dst': p.dst, 'sport': 0, 'dport': 0, 'nonFirst': False}
    if isinstance(p, IP):
        d['proto'] = p.proto
        d['nonFirst'] = p.frag != 0
    else:
        q = p.payload
        nh = p.nh
        while isinstance(q, (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, IPv6ExtHdrFragment, AH)):
            nh = q.nh
            if isinstance(q, IPv6ExtHdrFragment) and q.offset != 0:
                d['nonFirst'] = True
                break
            q = q.payload
        d['proto'] = nh
    if not d['nonFirst'] and d['proto'] in (6, 17):
        # ports read where the chain ends (scapy does not dissect what follows an AH header)
        raw, at = bytes(p), need(p) - 8
        d['sport'], d['dport'] = int.from_bytes(raw[at:at + 2], 'big'), int.from_bytes(raw[at + 2:at + 4], 'big')
    return d


def error6(err, quote, dst=S6, hlim=64):
    return IPv6(src=R6, dst=dst, hlim=hlim) / err / Raw(quote)


def error4(err, quote, dst=S4, ttl=64):
    return IP(src=R4, dst=dst, ttl=ttl, id=0x4242) / err / Raw(quote)


def lengths(full, n):
    ls = list(range(0, min(full, n + 16) + 1)) + list(range(n + 17, full, 97)) + [full]
    return sorted(set(ls))


def main():
    out = []
    for name, p in SERVER6.items():
        raw = bytes(p)
        full = min(len(raw), QUOTE6)
        n = need(p)
        fl = flow(p)
        for t, mk in ERR6.items():
            e = error6(mk(), raw[:full])
            v = dict(desc=f'v6 type {t} quoting {name}, full', type=t, family=6, error=bytes(e).hex(), status='ok', client=C6, **fl)
            v['translated'] = bytes(error6(mk(), raw[:full], dst=B6, hlim=65)).hex()
            out.append(v)
        for L in lengths(full, n):
            st = 'ok' if L >= n else 'truncated'
            e = error6(ERR6[2](), raw[:L])
            out.append(dict(desc=f'v6 PTB quoting {name}, {L} of {full} bytes', type=2, family=6, error=bytes(e).hex(), status=st, client=C6, **fl))
    for name, p in SERVER4.items():
        raw = bytes(p)
        full = min(len(raw), QUOTE4)
        n = need(p)
        fl = flow(p)
        for (t, c), mk in ERR4.items():
            e = error4(mk(), raw[:full])
            v = dict(desc=f'v4 type {t}/{c} quoting {name}, full', type=t, family=4, error=bytes(e).hex(), status='ok', client=C4, **fl)
            v['translated'] = bytes(error4(mk(), raw[:full], dst=B4, ttl=65)).hex()
            out.append(v)
        for L in lengths(full, n):
            st = 'ok' if L >= n else 'truncated'
            e = error4(ERR4[(3, 4)](), raw[:L])
            out.append(dict(desc=f'v4 Frag Needed quoting {name}, {L} of {full} bytes', type=3, family=4, error=bytes(e).hex(), status=st, client=C4, **fl))
    # garbage and someone else's packet: the front drops them as malformed
    other6 = bytes(IPv6(src='2001:db8:66::1', dst=C6) / TCP(sport=80, dport=40000) / pay(200))
    other4 = bytes(IP(src='198.51.100.66', dst=C4) / TCP(sport=80, dport=40000) / pay(200))
    g = bytes((i * 37 + 11) & 255 for i in range(300))
    bad = [
        ('v6 PTB quoting someone else\'s packet', 6, error6(ERR6[2](), other6), 'ok', '2001:db8:66::1'),
        ('v6 unreachable quoting garbage', 6, error6(ERR6[1](), g), 'invalid', None),
        ('v6 time exceeded quoting an IPv4 packet', 6, error6(ERR6[3](), bytes(SERVER4['tcp'])[:200]), 'invalid', None),
        ('v4 Frag Needed quoting someone else\'s packet', 4, error4(ERR4[(3, 4)](), other4), 'ok', '198.51.100.66'),
        ('v4 unreachable quoting garbage', 4, error4(ERR4[(3, 1)](), g), 'invalid', None),
        ('v4 time exceeded quoting an IPv6 packet', 4, error4(ERR4[(11, 0)](), bytes(SERVER6['tcp'])[:200]), 'invalid', None),
        ('v4 parameter problem quoting IHL 4', 4, error4(ERR4[(12, 0)](), b'\x44' + bytes(SERVER4['tcp'])[1:60]), 'invalid', None),
    ]
    for desc, fam, e, st, src in bad:
        out.append(dict(desc=desc, type=-1, family=fam, error=bytes(e).hex(), status=st, foreign=True, quotedSrc=src))
    # Steering scenarios (pool `label`: b3, b4, b5 keyed by flow label for 2001:db8:c3::/48; pool
    # `src`: the same members keyed by source for 2001:db8:c4::/48): clients' SYNs, and Packet Too
    # Big errors quoting the server's answers to them, with what each back must receive.
    sc = {'syn': {}, 'ptb': {}, 'toBack': {}}
    backs = {'b3': '2001:db8:b::3', 'b4': '2001:db8:b::4', 'b5': '2001:db8:b::5'}
    for i in range(12):
        for pre in ('c3', 'c4'):
            c = f'2001:db8:{pre}::{i + 1:x}'
            k = f'{pre}_{i}'
            sc['syn'][k] = bytes(IPv6(src=c, dst=S6, hlim=63, fl=0x10000 + i * 7919) / TCP(sport=41000 + i, dport=80, flags='S')).hex()
            ans = bytes(IPv6(src=S6, dst=c, hlim=63) / TCP(sport=80, dport=41000 + i, flags='A') / pay(1400))[:QUOTE6]
            sc['ptb'][k] = bytes(error6(ERR6[2](), ans)).hex()
            sc['toBack'][k] = {b: bytes(error6(ERR6[2](), ans, dst=a, hlim=65)).hex() for b, a in backs.items()}
    # A back wrapping return traffic toward its gateway (returnEncap): a router between them sends
    # Packet Too Big to B quoting the tunnel packet (B -> G, 6in6, inner S -> client, 1440 bytes);
    # the back lowers its path MTU to 1300 (tunnel MTU 1260) and relays PTB 1280 from B to S,
    # quoting the inner packet. A PTB quoting a tunnel to another gateway is not about our tunnel.
    G6 = '2001:db8:f:1::1'
    ans = IPv6(src=S6, dst=C6, hlim=63) / TCP(sport=80, dport=40000, flags='A') / pay(1380)
    tun = bytes(IPv6(src=B6, dst=G6, nh=41, hlim=64) / ans)
    back = {
        'ptb_gateway': bytes(IPv6(src='2001:db8:e1::9', dst=B6) / ICMPv6PacketTooBig(mtu=1300) / Raw(tun[:QUOTE6])).hex(),
        'ptb_relayed': bytes(IPv6(src=B6, dst=S6, hlim=64) / ICMPv6PacketTooBig(mtu=1280) / Raw(bytes(ans)[:QUOTE6 - 40])).hex(),
        'ptb_other_gateway': bytes(IPv6(src='2001:db8:e1::9', dst=B6) / ICMPv6PacketTooBig(mtu=1300)
                                   / Raw(bytes(IPv6(src=B6, dst='2001:db8:f:9::1', nh=41) / ans)[:QUOTE6])).hex(),
    }
    with open(os.path.join(HERE, 'icmp-quote.json'), 'w') as f:
        json.dump({'vectors': out, 'scenario': sc, 'back': back}, f, indent=0)
        f.write('\n')
    print(len(out), 'vectors')


if __name__ == '__main__':
    main()
