#!/usr/bin/python3
"""GSO segmentation vectors, built by scapy 2.5 (independent of the native splitter).

Run: /usr/bin/python3 test/vectors/make_gso_vectors.py   (writes test/vectors/gso.json)

A vector is a super-packet as a TUN queue with IFF_VNET_HDR delivers it (its L4 checksum field
holds the NEEDS_CSUM pseudo-header sum over the whole super-packet's L4 length), its 12-byte
virtio_net_hdr, and the segments the kernel would put on the wire, each rebuilt by scapy from
scratch: IPv4 total length, ID (+1 per segment) and header checksum, IPv6 payload length, TCP
sequence numbers, FIN/PSH on the last segment only, CWR on the first only, UDP length, and the
L4 checksums all computed by scapy. `complete` vectors: a non-GSO NEEDS_CSUM packet and the same
packet with its checksum finished.
"""
import json
import os
import random
import struct

from scapy.all import IP, IPv6, TCP, UDP, IPv6ExtHdrDestOpt, HBHOptUnknown, Raw

HERE = os.path.dirname(os.path.abspath(__file__))
rnd = random.Random(20261123)

C6, S6, B6 = '2001:db8:c1::10', '2001:db8:5::80', '2001:db8:b::1'
C4, S4 = '203.0.113.10', '192.0.2.80'
NEEDS_CSUM = 1
GSO = {'tcp4': 1, 'tcp6': 4, 'udp': 5}


def rb(n):
    return bytes(rnd.getrandbits(8) for _ in range(n))


def fold(t):
    while t > 0xffff:
        t = (t & 0xffff) + (t >> 16)
    return t


def pseudo(raw, l4off, l4len, proto):
    if raw[0] >> 4 == 6:
        s = raw[8:40] + struct.pack('!IxxxB', l4len, proto)
    else:
        s = raw[12:20] + struct.pack('!xBH', proto, l4len)
    return fold(sum(struct.unpack('!%dH' % (len(s) // 2), s)))


def vnet(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset):
    return struct.pack('<BBHHHHH', flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


def with_partial(raw, l4off, proto):
    """The super-packet as read from the TUN: L4 field = folded pseudo-header sum."""
    b = bytearray(raw)
    fo = l4off + (16 if proto == 6 else 6)
    p = pseudo(raw, l4off, len(raw) - l4off, proto)
    b[fo:fo + 2] = struct.pack('!H', p)
    return bytes(b)


def l3(v6, ext=None, ip_id=0, tos=0):
    if v6:
        p = IPv6(src=C6, dst=S6, tc=tos, fl=0x12345, hlim=63)
        return p / ext if ext is not None else p
    return IP(src=C4, dst=S4, id=ip_id, flags='DF', tos=tos, ttl=63)


vectors = []


def tcp_case(desc, v6, payload_len, gso, flags, options=(), ext=None, ip_id=0x1234, ecn=False, seq=1000):
    payload = rb(payload_len)
    th = dict(sport=40000, dport=80, seq=seq, ack=777, flags=flags, window=501, options=list(options))
    sup = l3(v6, ext, ip_id) / TCP(**th) / Raw(payload)
    raw = bytes(sup)
    l4off = len(raw) - len(bytes(sup[TCP]))
    hdrs = l4off + len(bytes(TCP(**th)))
    segs = []
    n = max(1, (payload_len + gso - 1) // gso)
    for s in range(n):
        chunk = payload[s * gso:(s + 1) * gso]
        f = int(sup[TCP].flags)
        if s != n - 1:
            f &= ~(0x01 | 0x08)  # FIN, PSH only on the last
        if s != 0:
            f &= ~0x80  # CWR only on the first
        t = dict(th, seq=(seq + s * gso) & 0xffffffff, flags=f)
        if v6:
            seg = l3(True, ext) / TCP(**t) / Raw(chunk)
        else:
            seg = l3(False, None, (ip_id + s) & 0xffff) / TCP(**t) / Raw(chunk)
        segs.append(bytes(seg).hex())
    gt = GSO['tcp6' if v6 else 'tcp4'] | (0x80 if ecn else 0)
    vectors.append({
        'desc': desc,
        'super': with_partial(raw, l4off, 6).hex(),
        'vnet': vnet(NEEDS_CSUM, gt, hdrs, gso, l4off, 16).hex(),
        'segments': segs,
    })


def udp_case(desc, v6, payload_len, gso, ip_id=0x4321):
    payload = rb(payload_len)
    sup = l3(v6, None, ip_id) / UDP(sport=5353, dport=7) / Raw(payload)
    raw = bytes(sup)
    l4off = 40 if v6 else 20
    segs = []
    n = max(1, (payload_len + gso - 1) // gso)
    for s in range(n):
        chunk = payload[s * gso:(s + 1) * gso]
        seg = l3(v6, None, (ip_id + s) & 0xffff) / UDP(sport=5353, dport=7) / Raw(chunk)
        segs.append(bytes(seg).hex())
    vectors.append({
        'desc': desc,
        'super': with_partial(raw, l4off, 17).hex(),
        'vnet': vnet(NEEDS_CSUM, GSO['udp'], l4off + 8, gso, l4off, 6).hex(),
        'segments': segs,
    })


lbsp = IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x1E, optdata=rb(32))])
tcp_case('TCPv4 3500 bytes / 1000, FIN+PSH+CWR (ECN gso), DF, ID increments', False, 3500, 1000, 'FPAC', ecn=True)
tcp_case('TCPv4 with timestamps (doff 8), 5000 / 1448, PSH', False, 5000, 1448, 'PA',
         options=[('NOP', None), ('NOP', None), ('Timestamp', (123456, 654321))])
tcp_case('TCPv4 ID wraps past 0xFFFF', False, 3000, 1000, 'A', ip_id=0xfffe)
tcp_case('TCPv6 2900 / 1440, PSH', True, 2900, 1440, 'PA')
tcp_case('TCPv6 with a DestOpt (LBSP) header, 2000 / 1000 (exact multiple)', True, 2000, 1000, 'PA', ext=lbsp)
tcp_case('TCPv6 sequence number wraps', True, 4000, 1440, 'A', seq=0xffffff00)
tcp_case('TCPv6 odd payload 4441 / 1440', True, 4441, 1440, 'PA')
udp_case('UDPv4 USO 2500 / 1000', False, 2500, 1000)
udp_case('UDPv6 USO 1001 / 1000 (1-byte last segment)', True, 1001, 1000)
udp_case('UDPv6 USO 3000 / 1200', True, 3000, 1200)

complete = []
for desc, v6, proto, n in [('UDPv4 301 bytes', False, 17, 301), ('UDPv6 64 bytes', True, 17, 64),
                           ('TCPv4 1460 bytes', False, 6, 1460), ('TCPv6 1 byte', True, 6, 1)]:
    l4 = TCP(sport=1234, dport=80, flags='PA', seq=5) if proto == 6 else UDP(sport=1234, dport=53)
    p = l3(v6) / l4 / Raw(rb(n))
    raw = bytes(p)
    l4off = 40 if v6 else 20
    complete.append({
        'desc': desc,
        'partial': with_partial(raw, l4off, proto).hex(),
        'vnet': vnet(NEEDS_CSUM, 0, 0, 0, l4off, 16 if proto == 6 else 6).hex(),
        'complete': raw.hex(),
    })

with open(os.path.join(HERE, 'gso.json'), 'w') as f:
    json.dump({'split': vectors, 'complete': complete}, f, indent=1)
    f.write('\n')
print('gso.json: %d split, %d complete vectors' % (len(vectors), len(complete)))
