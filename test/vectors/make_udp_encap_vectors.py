#!/usr/bin/python3
"""IP-in-UDP (GUE variant 1) tunnel vectors, built by scapy 2.5 (an independent implementation).

Run: /usr/bin/python3 test/vectors/make_udp_encap_vectors.py   (writes test/vectors/udp-encap.json)

Outer UDP and IP checksums are computed by scapy from scratch. The outer UDP source port and the
outer IPv6 flow label come from the inner-flow hash as packet_rules.py writes it from the SPEC
(port = 49152 | 14 bits of it), so the vectors check the TypeScript, not copy it.
Decapsulation verdicts for broken packets are written out from RFC 768 / RFC 8200 / the SPEC.
"""
import json
import os

from scapy.all import IP, IPv6, TCP, UDP, Raw, ICMP

from packet_rules import flow_hash


def sport(inner):
    """Outer UDP source port (SPEC 3): the dynamic range 49152-65535, 14 bits of the flow hash."""
    h = flow_hash(inner)
    return 0xc000 | ((h ^ (h >> 14)) & 0x3fff)

HERE = os.path.dirname(os.path.abspath(__file__))
C6, S6, B6, F6 = '2001:db8:c1::10', '2001:db8:5::80', '2001:db8:b::1', '2001:db8:e1::f'
C4, S4, B4, F4 = '203.0.113.10', '192.0.2.80', '198.51.100.1', '203.0.113.137'
PORT = 6080

def h(p):
    return bytes(p).hex()


def fresh(p):
    return p.__class__(bytes(p))


inners = [
    ('v4 TCP DF ECT(0) DSCP 10', fresh(IP(src=C4, dst=S4, flags='DF', tos=(10 << 2) | 2, id=99) / TCP(sport=40001, dport=443, flags='S'))),
    ('v4 UDP no DF CE', fresh(IP(src=C4, dst=S4, tos=3) / UDP(sport=40002, dport=53) / (b'x' * 40))),
    ('v4 ICMP echo', fresh(IP(src=C4, dst=S4) / ICMP(id=7) / (b'p' * 21))),
    ('v6 TCP ECT(1) tc 0xb9 label', fresh(IPv6(src=C6, dst=S6, tc=0xb9, fl=0xabcde) / TCP(sport=40003, dport=443, flags='S'))),
    ('v6 UDP tc 0, odd length', fresh(IPv6(src=C6, dst=S6) / UDP(sport=40004, dport=53) / (b'y' * 41))),
    ('v6 TCP 1400 bytes of data', fresh(IPv6(src=C6, dst=S6) / TCP(sport=40005, dport=443, flags='PA') / (bytes(range(256)) * 5 + b'z' * 120))),
]
encap = []
ipid = 0x1234
for desc, inner in inners:
    is6 = IPv6 in inner
    tos = inner[IPv6].tc if is6 else inner[IP].tos
    df = 'DF' if (is6 or inner[IP].flags.DF) else 0
    sp = sport(inner)
    u = UDP(sport=sp, dport=PORT) / Raw(bytes(inner))
    o4 = IP(src=S4, dst=B4, ttl=64, tos=tos, id=ipid, flags=df) / u
    o6 = IPv6(src=S6, dst=B6, hlim=64, tc=tos, fl=flow_hash(inner)) / u
    fam = '6' if is6 else '4'
    for ov, o in ((4, o4), (6, o6)):
        out = fresh(o)
        assert out[UDP].chksum not in (0, None)
        encap.append({'desc': f'{fam}in{ov} over UDP: {desc}', 'input': h(inner), 'outerVersion': ov,
                      'src': S4 if ov == 4 else S6, 'dst': B4 if ov == 4 else B6, 'hopLimit': 64, 'ipId': ipid,
                      'port': PORT, 'sport': sp, 'output': h(out)})

# Decapsulation. RFC 6040 ECN on decap is the same table as IP-in-IP (decap.json covers it); here a
# few combinations plus every UDP-level check.
RFC6040 = {0: {0: 0, 2: 0, 1: 0, 3: 'drop'}, 2: {0: 2, 2: 2, 1: 1, 3: 3}, 1: {0: 1, 2: 1, 1: 1, 3: 3}, 3: {0: 3, 2: 3, 1: 3, 3: 3}}
decap = []


def outer_of(fam_out, payload, tos=0, chksum=None, ulen=None, sp=50000, ip_extra=None):
    u = UDP(sport=sp, dport=PORT, chksum=chksum, len=ulen) / Raw(payload)
    if fam_out == 4:
        return fresh(IP(src=F4, dst=B4, tos=tos, **(ip_extra or {})) / u)
    return fresh(IPv6(src=F6, dst=B6, tc=tos) / u)


for ie, oe in ((0, 0), (2, 3), (2, 1), (0, 3), (3, 0), (1, 2)):
    for fam in ('4in4', '6in6', '4in6', '6in4'):
        inner = fresh(IP(src=C4, dst=S4, tos=(12 << 2) | ie) / UDP(sport=7, dport=53) / b'q') if fam[0] == '4' else fresh(IPv6(src=C6, dst=S6, tc=(12 << 2) | ie) / UDP(sport=7, dport=53) / b'q')
        o = outer_of(int(fam[-1]), bytes(inner), tos=oe)
        r = RFC6040[ie][oe]
        v = {'desc': f'{fam} over UDP, inner ECN {ie} outer ECN {oe}', 'input': h(o)}
        if r == 'drop':
            v['verdict'] = 'ECN_DROP'
        else:
            out = inner.copy()
            if IPv6 in out:
                out[IPv6].tc = (12 << 2) | r
            else:
                out[IP].tos = (12 << 2) | r
                out[IP].chksum = None
            v['verdict'] = 'OK'
            v['output'] = h(fresh(out))
        decap.append(v)

i4 = fresh(IP(src=C4, dst=S4) / UDP(sport=7, dport=53) / b'q')
i6 = fresh(IPv6(src=C6, dst=S6) / UDP(sport=7, dport=53) / b'q')


def flip_csum(p):
    raw = bytearray(bytes(p))
    off = (raw[0] & 15) * 4 if raw[0] >> 4 == 4 else 40
    raw[off + 6] ^= 0x01
    return raw.hex()


def short_udp(fam_out, payload, ulen):
    """UDP length ulen < the outer payload: the checksum scapy computes over the first ulen bytes
    (what a receiver checks), then the whole payload behind the header."""
    ref = outer_of(fam_out, payload[:ulen - 8])
    hdr = bytes(ref[UDP])[:8]
    if fam_out == 4:
        return h(fresh(IP(src=F4, dst=B4, proto=17) / Raw(hdr + payload)))
    return h(fresh(IPv6(src=F6, dst=B6, nh=17) / Raw(hdr + payload)))


def decap_case(desc, hexs, verdict, output=None):
    v = {'desc': desc, 'input': hexs, 'verdict': verdict}
    if output is not None:
        v['output'] = output
    decap.append(v)


decap_case('4in4 over UDP: bad UDP checksum', flip_csum(outer_of(4, bytes(i4))), 'MALFORMED')
decap_case('6in6 over UDP: bad UDP checksum', flip_csum(outer_of(6, bytes(i6))), 'MALFORMED')
decap_case('4in6 over UDP: bad UDP checksum', flip_csum(outer_of(6, bytes(i4))), 'MALFORMED')
decap_case('4in4 over UDP: zero checksum (none, IPv4 allows it)', h(outer_of(4, bytes(i4), chksum=0)), 'OK', h(i4))
decap_case('6in6 over UDP: zero checksum (RFC 8200 8.1 forbids it)', h(outer_of(6, bytes(i6), chksum=0)), 'MALFORMED')
decap_case('UDP length beyond the outer payload', h(outer_of(4, bytes(i4), ulen=8 + len(bytes(i4)) + 4)), 'MALFORMED')
decap_case('UDP length below 8', h(outer_of(4, bytes(i4), ulen=7, chksum=0)), 'MALFORMED')
decap_case('UDP length shorter than the inner packet', short_udp(6, bytes(i6), 8 + 40), 'MALFORMED')
decap_case('UDP length shorter than the outer payload (trailing bytes ignored, as Linux trims)',
           short_udp(4, bytes(i4) + b'\1\2\3\4', 8 + len(bytes(i4))), 'OK', h(i4))
decap_case('payload first nibble 5 (not GUE variant 1)', h(outer_of(4, b'\x50' + bytes(i4)[1:])), 'MALFORMED')
decap_case('payload first nibble 0 (GUE variant 0 header)', h(outer_of(6, b'\x00\x00\x00\x00' + bytes(i6))), 'MALFORMED')
decap_case('empty UDP payload', h(outer_of(4, b'')), 'MALFORMED')
bad = bytearray(bytes(i4)); bad[10] ^= 0xff
decap_case('inner IPv4 bad header checksum', h(outer_of(4, bytes(bad))), 'MALFORMED')
decap_case('inner IPv6 truncated', h(outer_of(6, bytes(i6)[:30])), 'MALFORMED')
decap_case('not a tunnel (TCP)', h(fresh(IP(src=F4, dst=B4) / TCP(dport=PORT))), 'NOT_TUNNEL')
decap_case('outer IPv4 fragment', h(fresh(IP(src=F4, dst=B4, flags='MF') / UDP(sport=50000, dport=PORT) / Raw(bytes(i4)))), 'FRAGMENT')
decap_case('4in4 over UDP, 1400-byte inner', h(outer_of(4, bytes(fresh(IP(src=C4, dst=S4) / UDP(sport=7, dport=53) / (b'w' * 1372))))),
           'OK', h(fresh(IP(src=C4, dst=S4) / UDP(sport=7, dport=53) / (b'w' * 1372))))

with open(os.path.join(HERE, 'udp-encap.json'), 'w') as f:
    json.dump({'encap': encap, 'decap': decap}, f, indent=1)
    f.write('\n')
print('udp encap', len(encap), 'decap', len(decap))
