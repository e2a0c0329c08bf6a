#!/usr/bin/python3
"""Seed corpus for the jazzer.js fuzz targets (test/fuzz/targets), built with scapy.

Run: /usr/bin/python3 test/fuzz/make_corpus.py   (rewrites test/fuzz/corpus/<target>/seed-*)
     /usr/bin/python3 test/fuzz/make_corpus.py udp   (adds only the IP-in-UDP tunnel seeds)
     /usr/bin/python3 test/fuzz/make_corpus.py gso   (adds only the GSO super-packet seeds)

Every packet of test/vectors/*.json, plus valid packets of every kind mslb handles in the lab's
address plan (client -> service for the front, front -> back for the back: translated, 4in4, 6in6,
4in6, 6in4, LBSP in every position, extension-header chains, fragments, ICMP errors quoting our
packets) and a few malformed ones. Each file is [control byte][...] as the target reads it
(see each target's header comment). Inputs the fuzzer finds are kept out of the repository unless
`node dist-fuzz/test/fuzz/run-fuzz.js --merge` minimises them into it.
"""
import glob
import hashlib
import json
import os
import sys
import random
import struct

from scapy.all import (IP, IPv6, TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6PacketTooBig, ICMPv6TimeExceeded,
                       ICMPv6DestUnreach, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                       IPv6ExtHdrFragment, PadN, Pad1, HBHOptUnknown, Raw, fragment, fragment6)
from socket import inet_pton, AF_INET6

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
rnd = random.Random(9009)

C6, C6B, S6, S6B = '2001:db8:c1::10', '2001:db8:c2::10', '2001:db8:5::80', '2001:db8:5::81'
B6, B6B, B6X = '2001:db8:b::1', '2001:db8:b::2', '2001:db8:b::11'
C4, C4B, S4, S4B = '203.0.113.10', '203.0.113.74', '192.0.2.80', '192.0.2.81'
B4, B4B, B4X = '198.51.100.1', '198.51.100.2', '198.51.100.11'
LBSP = 0x1E
TCP_OPTS = [('MSS', 1460), ('SAckOK', b''), ('Timestamp', (1, 0)), ('NOP', None), ('WScale', 7)]


def rb(n):
    return bytes(rnd.getrandbits(8) for _ in range(n))


def a6(s):
    return inet_pton(AF_INET6, s)


def lbsp(client=C6, server='::', typ=LBSP, nh=None):
    opts = [PadN(optdata=b'\0\0'), HBHOptUnknown(otype=typ, optdata=a6(client) + a6(server))]
    return IPv6ExtHdrDestOpt(options=opts) if nh is None else IPv6ExtHdrDestOpt(nh=nh, options=opts)


def b(p):
    return bytes(p)


# ---------------------------------------------------------------- client -> service (front input)
def client_packets():
    out = []
    for src6, src4 in ((C6, C4), (C6B, C4B)):
        for dst6, dst4 in ((S6, S4),):
            out += [
                IPv6(src=src6, dst=dst6, fl=0x12345) / TCP(sport=40000, dport=443, flags='S', options=TCP_OPTS),
                IPv6(src=src6, dst=dst6) / TCP(sport=40001, dport=80, flags='PA', seq=7, ack=9) / rb(200),
                IPv6(src=src6, dst=dst6) / UDP(sport=5353, dport=53) / rb(60),
                IPv6(src=src6, dst=dst6) / ICMPv6EchoRequest(id=7, seq=1, data=rb(32)),
                IP(src=src4, dst=dst4, flags='DF', tos=0x2a) / TCP(sport=40000, dport=443, flags='S', options=TCP_OPTS),
                IP(src=src4, dst=dst4) / TCP(sport=40002, dport=80, flags='A') / rb(300),
                IP(src=src4, dst=dst4) / UDP(sport=1234, dport=53) / rb(40),
                IP(src=src4, dst=dst4) / ICMP(type=8, id=3, seq=4) / rb(24),
            ]
    out += [
        IPv6(src=C6, dst=S6) / lbsp() / TCP(sport=1, dport=443, flags='S'),
        IPv6(src=C6, dst=S6) / lbsp(server=B6B) / TCP(sport=2, dport=443, flags='A'),
        IPv6(src='2001:db8:ffff::1', dst=S6) / lbsp(client=C6B) / UDP(sport=3, dport=53) / rb(10),
        IPv6(src=C6, dst=S6) / lbsp(client='::ffff:203.0.113.10') / UDP(sport=4, dport=53),
        IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop(options=[PadN(optdata=b'\0\0\0\0')]) / lbsp() / TCP(sport=5, dport=443),
        IPv6(src=C6, dst=S6) / IPv6ExtHdrDestOpt(options=[PadN(optdata=b'\0\0\0\0')]) / IPv6ExtHdrRouting(segleft=0, addresses=[S6]) / lbsp() / UDP(sport=6, dport=7),
        IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(id=0x1234, m=0, offset=0) / UDP(sport=7, dport=8) / rb(20),
        IPv6(src=C6, dst=S6, nh=50) / rb(64),
        IPv6(src=C6, dst=S6, nh=59),
        IPv6(src=C6, dst=S6) / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=LBSP, optdata=a6(C6))]) / UDP(sport=9, dport=9),
        IP(src=C4, dst=S4, options=b'\x07\x07\x04\x00\x00\x00\x00\x00') / TCP(sport=1, dport=2),
        IP(src=C4, dst=S4, proto=50) / rb(40),
        IP(src=C4, dst=S4, proto=253) / rb(20),
        IPv6(src=C6, dst='ff02::16', nh=0) / Raw(b'\x3a\x00\x05\x02\x00\x00\x01\x00') / rb(20),
    ]
    big6 = IPv6(src=C6, dst=S6) / UDP(sport=11, dport=12) / rb(1400)
    out += fragment6(IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(id=0x77) / UDP(sport=11, dport=12) / rb(1400), 600)
    out += fragment(IP(src=C4, dst=S4, id=99) / UDP(sport=11, dport=12) / rb(1400), 520)
    out.append(big6)
    return out


# ---------------------------------------------------------------- front -> back (back input)
def back_packets():
    inner6 = IPv6(src=C6, dst=S6) / TCP(sport=40000, dport=443, flags='S', options=TCP_OPTS)
    inner4 = IP(src=C4, dst=S4) / UDP(sport=1234, dport=53) / rb(30)
    out = [
        IPv6(src=C6, dst=B6) / TCP(sport=40000, dport=443, flags='S', options=TCP_OPTS),
        IPv6(src=C6, dst=B6) / lbsp() / UDP(sport=1, dport=53) / rb(20),
        IP(src=C4, dst=B4) / TCP(sport=40000, dport=443, flags='S'),
        IP(src=C4, dst=B4X) / UDP(sport=1, dport=2) / rb(8),
        IPv6(src=C6, dst=B6X) / UDP(sport=1, dport=2) / rb(8),
        IPv6(src=S6, dst=B6, nh=41) / inner6,                     # 6in6
        IP(src=S4, dst=B4, proto=4) / inner4,                     # 4in4
        IPv6(src=S6, dst=B6, nh=4) / inner4,                      # 4in6
        IP(src=S4, dst=B4, proto=41) / inner6,                    # 6in4
        IPv6(src=S6, dst=B6X, nh=41) / IPv6(src=C6, dst=S6B) / UDP(sport=1, dport=2),
        IP(src=S4, dst=B4, proto=4, tos=3) / IP(src=C4, dst=S4, tos=0) / UDP(sport=1, dport=2),  # CE outer, Not-ECT inner
        IPv6(src='2001:db8:dead::1', dst=B6, nh=41) / inner6,     # unauthorized outer source
        IPv6(src=S6, dst=B6, nh=41) / IPv6(src=S6, dst=B6, nh=41) / inner6,   # nested toward ourselves
        IPv6(src=S6, dst=B6, nh=41) / IPv6(src=C6, dst=S6) / lbsp() / UDP(sport=5, dport=6),
        IPv6(src=S6, dst=B6) / IPv6ExtHdrFragment(id=5, m=1) / Raw(b(IPv6(src=C6, dst=S6) / UDP(sport=1, dport=2) / rb(16))),
        IPv6(src=S6, dst='2001:db8:b::99', nh=41) / inner6,       # not ours
    ]
    return out


# ---------------------------------------------------------------- IP-in-UDP tunnels (back1-udp.yaml: udpPort 6080)
UDP_PORT = 6080


def udp_tunnels():
    inner6 = IPv6(src=C6, dst=S6) / TCP(sport=40000, dport=443, flags='S', options=TCP_OPTS)
    inner4 = IP(src=C4, dst=S4) / UDP(sport=1234, dport=53) / rb(30)
    u = lambda: UDP(sport=50000 + rnd.getrandbits(8), dport=UDP_PORT)
    good6 = IPv6(src=S6, dst=B6) / u() / inner6
    bad = bytearray(b(good6)); bad[46] ^= 0x10
    out = [
        good6,                                                    # 6in6 over UDP
        IP(src=S4, dst=B4) / u() / inner4,                        # 4in4
        IPv6(src=S6, dst=B6) / u() / inner4,                      # 4in6
        IP(src=S4, dst=B4) / u() / inner6,                        # 6in4
        IP(src=S4, dst=B4, tos=3) / u() / IP(src=C4, dst=S4, tos=0) / UDP(sport=1, dport=2),   # CE outer, Not-ECT inner
        Raw(bytes(bad)),                                          # bad UDP checksum
        IPv6(src=S6, dst=B6) / UDP(sport=50000, dport=UDP_PORT, len=300) / inner6,   # UDP length past the packet
        IP(src=S4, dst=B4) / UDP(sport=50000, dport=UDP_PORT, chksum=0) / inner4,    # no checksum (IPv4 allows it)
        IPv6(src=S6, dst=B6) / UDP(sport=50000, dport=UDP_PORT, chksum=0) / inner6,  # zero checksum over IPv6
        IPv6(src=S6, dst=B6) / u() / Raw(b'\x00\x00\x00\x00' + b(inner6)),          # GUE variant 0 header
        IPv6(src=S6, dst=B6) / UDP(sport=50000, dport=UDP_PORT + 1) / inner6,        # another port
        IPv6(src='2001:db8:dead::1', dst=B6) / u() / inner6,      # outside allowedFronts
        IPv6(src=S6, dst=B6) / u() / IPv6(src=S6, dst=B6) / u() / inner6,            # nested toward ourselves
        IPv6(src=S6, dst=B6) / u() / IPv6(src=C6, dst='2001:db8:77::1') / UDP(),     # inner not a service
    ]
    out += fragment6(IPv6(src=S6, dst=B6) / IPv6ExtHdrFragment(id=0x66) / u() / IPv6(src=C6, dst=S6) / UDP(sport=2, dport=3) / rb(1300), 700)
    out += fragment(IP(src=S4, dst=B4, id=67) / u() / IP(src=C4, dst=S4) / UDP(sport=2, dport=3) / rb(1300), 600)
    return out


def fabric_udp_errors():
    """ICMP errors quoting the front's own UDP tunnel packets (front-encap-udp.yaml: outer source S)."""
    t6 = IPv6(src=S6, dst=B6, hlim=63) / UDP(sport=50000, dport=UDP_PORT) / IPv6(src=C6, dst=S6) / TCP(sport=40000, dport=443, flags='A') / rb(1400)
    t4 = IP(src=S4, dst=B4, ttl=63, flags='DF') / UDP(sport=50000, dport=UDP_PORT) / IP(src=C4, dst=S4, flags='DF') / TCP(sport=40000, dport=443, flags='A') / rb(1400)
    return [
        IPv6(src='2001:db8:e1::2', dst=S6) / ICMPv6PacketTooBig(mtu=1400) / Raw(b(t6)[:1232]),
        IPv6(src='2001:db8:e1::2', dst=S6) / ICMPv6PacketTooBig(mtu=600) / Raw(b(t6)[:60]),
        IP(src='203.0.113.138', dst=S4) / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(b(t4)[:548]),
        IP(src='203.0.113.138', dst=S4) / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(b(t4)[:30]),
    ]


# ---------------------------------------------------------------- tunnels a front accepts (draft configs)
def accepted_tunnels():
    G6, G4, F2v6, F2v4 = '2001:db8:f:1::1', '192.0.2.81', '2001:db8:f:2::80', '192.0.2.82'
    ret6 = IPv6(src=S6, dst=C6) / TCP(sport=443, dport=40000, flags='SA')
    ret4 = IP(src=S4, dst=C4) / UDP(sport=53, dport=1234) / rb(20)
    out = [
        IPv6(src=B6, dst=G6, nh=41) / ret6,                       # return encapsulation, 6in6
        IPv6(src=B6, dst=G6, nh=4) / ret4,                        # 4in6
        IP(src=B4, dst=G4, proto=4) / ret4,                       # 4in4
        IP(src=B4, dst=G4, proto=41) / ret6,                      # 6in4
        IPv6(src=S6, dst=F2v6, nh=41) / IPv6(src=C6, dst=S6) / UDP(sport=1, dport=7) / rb(30),   # stage 1 -> stage 2
        IP(src=S4, dst=F2v4, proto=4) / IP(src=C4, dst=S4) / UDP(sport=1, dport=7) / rb(30),
        IPv6(src='2001:db8:dead::1', dst=G6, nh=41) / ret6,       # not accepted
    ]
    big = IPv6(src=B6, dst=G6, nh=41) / IPv6(src=S6, dst=C6) / UDP(sport=2, dport=3) / rb(1300)
    out += fragment6(IPv6(src=B6, dst=G6) / IPv6ExtHdrFragment(id=0x55, nh=41) / IPv6(src=S6, dst=C6) / UDP(sport=2, dport=3) / rb(1300), 700)
    out += fragment(IP(src=B4, dst=G4, proto=4, id=66) / IP(src=S4, dst=C4) / UDP(sport=2, dport=3) / rb(1300), 600)
    out.append(big)
    return out


# ---------------------------------------------------------------- return traffic (LBSP stamping input)
def return_packets():
    return [
        IPv6(src=S6, dst=C6) / TCP(sport=443, dport=40000, flags='SA', options=[('MSS', 1440)]),
        IPv6(src=S6, dst=C6) / TCP(sport=443, dport=40000, flags='A') / rb(100),
        IPv6(src=S6, dst=C6) / UDP(sport=53, dport=5353) / rb(50),
        IPv6(src=S6, dst=C6) / lbsp(server='::') / TCP(sport=443, dport=1, flags='A'),
        IPv6(src=S6, dst=C6) / IPv6ExtHdrDestOpt(options=[PadN(optdata=b'\0\0\0\0')]) / UDP(sport=1, dport=2),
        IPv6(src=S6, dst=C6) / IPv6ExtHdrHopByHop(options=[PadN(optdata=b'\0\0\0\0')]) / UDP(sport=1, dport=2),
        IPv6(src=S6, dst=C6) / IPv6ExtHdrRouting(segleft=0, addresses=[C6]) / TCP(sport=443, dport=3),
        IPv6(src=S6, dst=C6) / IPv6ExtHdrFragment(id=9, m=1) / UDP(sport=1, dport=2) / rb(64),
        IPv6(src=S6, dst=C6, nh=50) / rb(32),
        IPv6(src=S6, dst=C6) / ICMPv6EchoRequest(id=1, seq=1),
        IP(src=S4, dst=C4) / TCP(sport=443, dport=40000, flags='SA'),
    ]


def own_dstopts_replies():
    """Replies whose server set its own final Destination Options header (the back merges LBSP into it)."""
    def d(*opts):
        return IPv6ExtHdrDestOpt(autopad=0, options=list(opts))

    def u(t, data):
        return HBHOptUnknown(otype=t, optdata=data)
    tcp = TCP(sport=443, dport=40000, flags='A') / (b'z' * 40)
    return [
        IPv6(src=S6, dst=C6) / d(PadN(optdata=b'\0' * 4)) / TCP(sport=443, dport=40000, flags='SA', options=[('MSS', 1400)]),
        IPv6(src=S6, dst=C6) / d(u(0x07, b'\xaa\xbb'), PadN(optdata=b'')) / UDP(sport=53, dport=5353) / (b'q' * 20),
        IPv6(src=S6, dst=C6) / d(u(0x07, b'\xaa\xbb\xcc\xdd')) / tcp,
        IPv6(src=S6, dst=C6) / d(u(0x07, b'\x01\x02'), u(0x3e, b'\x03\x04\x05\x06'), PadN(optdata=b'\0\0')) / tcp,
        IPv6(src=S6, dst=C6) / d(u(0x04, b'\x04'), u(0x07, b''), Pad1()) / tcp,
        IPv6(src=S6, dst=C6) / IPv6ExtHdrHopByHop(options=[PadN(optdata=b'\0' * 4)]) / d(u(0x07, b'\x01'), Pad1(), Pad1(), Pad1()) / tcp,
        IPv6(src=S6, dst=C6) / d(PadN(optdata=b'\0' * 4)) / IPv6ExtHdrRouting(segleft=0, addresses=[C6]) / d(u(0x07, b'\xaa\xbb'), PadN(optdata=b'')) / UDP(sport=1, dport=2),
        IPv6(src=S6, dst=C6) / d(*[u(0x07 + k, b'') for k in range(7)]) / UDP(sport=1, dport=2),
        IPv6(src=S6, dst=C6) / d(*[u(0x07 + k, b'') for k in range(8)], PadN(optdata=b'\0' * 4)) / UDP(sport=1, dport=2),
        IPv6(src=S6, dst=C6) / d(u(LBSP, a6(C6)), PadN(optdata=b'\0\0')) / UDP(sport=1, dport=2),
    ]


def write_merge_seeds():
    # lbsp: no client / client known, unlimited room, and rooms 32, 39, 40 (control bits 2-7)
    for i, p in enumerate(b(x) for x in own_dstopts_replies()):
        for ctrl in (0x02, 0x03, 0x02 | 32 << 2, 0x02 | 39 << 2, 0x03 | 40 << 2):
            write('lbsp', f'merge-{i}-{ctrl:02x}', bytes([ctrl]) + p)
        write('back', f'merge-{i}-2', bytes([2]) + p)


# ---------------------------------------------------------------- ICMP errors
def icmp_packets():
    q6 = IPv6(src=C6, dst=S6) / TCP(sport=40000, dport=443, flags='A') / rb(1200)
    q4 = IP(src=C4, dst=S4, flags='DF') / TCP(sport=40000, dport=443, flags='A') / rb(500)
    t6 = IPv6(src=S6, dst=B6, nh=41) / IPv6(src=C6, dst=S6) / UDP(sport=1, dport=2) / rb(100)
    t4 = IP(src=S4, dst=B4, proto=4) / IP(src=C4, dst=S4) / UDP(sport=1, dport=2) / rb(100)
    return [
        IPv6(src='2001:db8:e1::1', dst=S6) / ICMPv6PacketTooBig(mtu=1280) / Raw(b(t6)[:1232]),
        IPv6(src='2001:db8:e1::1', dst=S6) / ICMPv6TimeExceeded() / Raw(b(t6)),
        IPv6(src='2001:db8:e1::1', dst=S6) / ICMPv6DestUnreach(code=3) / Raw(b(q6)[:200]),
        IPv6(src='2001:db8:e1::1', dst=S6) / ICMPv6PacketTooBig(mtu=1400) / Raw(rb(80)),   # quoting garbage
        IPv6(src='2001:db8:e1::1', dst=S6) / ICMPv6PacketTooBig(mtu=1400) / Raw(b(t6)[:30]),  # truncated quote
        IP(src='203.0.113.137', dst=S4) / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(b(t4)[:548]),
        IP(src='203.0.113.137', dst=S4) / ICMP(type=11, code=0) / Raw(b(q4)[:28]),
        IP(src='203.0.113.137', dst=S4) / ICMP(type=3, code=1) / Raw(rb(20)),
        IP(src='203.0.113.137', dst=S4) / ICMP(type=12) / Raw(b(t4)[:10]),
        q6, q4,
    ]


# ---------------------------------------------------------------- malformed
def malformed():
    v6 = b(IPv6(src=C6, dst=S6) / UDP(sport=1, dport=2) / rb(20))
    v4 = b(IP(src=C4, dst=S4) / UDP(sport=1, dport=2) / rb(20))
    loop = bytearray(b(IPv6(src=C6, dst=S6, nh=60)))
    for _ in range(20):
        loop += bytes([60, 0, 1, 4, 0, 0, 0, 0])
    loop[4:6] = struct.pack('!H', len(loop) - 40)
    out = [
        v6[:39], v6[:41], v4[:19], v4[:21],
        bytes([0x44]) + v4[1:],                                   # IHL 4
        bytes([0x55]) + v4[1:],                                   # version 5
        v4[:2] + struct.pack('!H', 500) + v4[4:],                 # total length past the packet
        v6[:4] + struct.pack('!H', 900) + v6[6:],                 # payload length past the packet
        bytes(loop),                                              # 20 destination options headers
        b(IPv6(src=C6, dst=S6) / IPv6ExtHdrDestOpt(options=[PadN(optdata=b'\0\0\0\0')]) / IPv6ExtHdrHopByHop() / UDP()),
        b(IPv6(src=C6, dst=S6, nh=60) / Raw(bytes([17, 0, 0x1e, 0x20, 0, 0, 0, 0]) + b(UDP()))),   # option past its header
        b(IPv6(src=C6, dst=S6, nh=60) / Raw(bytes([17, 0, 1, 4, 1, 0, 0, 0]) + b(UDP()))),         # PadN with data
    ]
    return out


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    h = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(d, f'seed-{name}-{h}'), 'wb') as f:
        f.write(data)


def vector_packets():
    out = []
    for f in sorted(glob.glob(os.path.join(ROOT, 'test', 'vectors', '*.json'))):
        j = json.load(open(f))
        items = j if isinstance(j, list) else [x for v in j.values() if isinstance(v, list) for x in v]
        for it in items:
            for k in ('hex', 'input', 'output'):
                v = it.get(k)
                if isinstance(v, str) and v:
                    try:
                        out.append(bytes.fromhex(v))
                    except ValueError:
                        pass
    return list(dict.fromkeys(out))


def write_udp_seeds(cl):
    """IP-in-UDP seeds: the back with udpPort (variant 4), decapsulateUdp (control bit 1), the
    fronts with encap.udpPort (variants 5, 6) on client packets and fabric errors about UDP tunnels."""
    ut = [b(p) for p in udp_tunnels()]
    for i, p in enumerate(ut):
        write('back', f'udp-{i}-4', bytes([4]) + p)        # back1-udp.yaml
        write('decap', f'udp-{i}', bytes([2 | (i & 1)]) + p)
    for i, p in enumerate(cl[:12] + [b(x) for x in fabric_udp_errors()]):
        for variant in (5, 6):                           # encap over UDP, same family and mixed
            write('front', f'udp-{i}-{variant}', bytes([variant]) + p)


# ---------------------------------------------------------------- GSO super-packets (offload variants)
# virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers
F_NEEDS_CSUM, F_UDP_TUNNEL_CSUM = 1, 8
GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, GSO_UDP_TUNNEL_IPV4, GSO_UDP_TUNNEL_IPV6 = 1, 4, 5, 0x20, 0x40
# control: 0x80 vnet header, 0x40 offloads (segment slab, TAP), 0x20 write-side GRO, 0x10 no TAP
OFF, GRO, NOTAP = 0xc0, 0x20, 0x10


def vnet(flags, typ, hdr_len, gso, cs, co):
    return struct.pack('<BBHHHHH', flags, typ, hdr_len, gso, cs, co, 0)


def tso(src, dst, segs=3, mss=400, sport=40000, dport=443, ecn=0, df=True):
    """A TCP super-packet as a client's stack hands it to the TUN (TSO, checksum partial)."""
    v6 = ':' in src
    ip = IPv6(src=src, dst=dst, tc=ecn) if v6 else IP(src=src, dst=dst, tos=ecn, flags='DF' if df else 0)
    p = b(ip / TCP(sport=sport, dport=dport, seq=1000, ack=1, flags='PA') / rb(segs * mss))
    l3 = 40 if v6 else 20
    return vnet(F_NEEDS_CSUM, GSO_TCPV6 if v6 else GSO_TCPV4, l3 + 20, mss, l3, 16), p


def uso(src, dst, segs=3, size=300, sport=1234, dport=53):
    """A UDP super-packet (USO): `segs` datagrams of `size` bytes behind one header."""
    v6 = ':' in src
    ip = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    p = b(ip / UDP(sport=sport, dport=dport) / rb(segs * size))
    l3 = 40 if v6 else 20
    return vnet(F_NEEDS_CSUM, GSO_UDP_L4, l3 + 8, size, l3, 6), p


def udp_tunnel_uso(outer_src, outer_dst, inner_src, inner_dst, segs=3, mss=300):
    """IP-in-UDP tunnel packets of one flow merged by GRO into a USO super-packet: every segment
    is one tunnel packet's UDP payload (an inner TCP segment of the next sequence number)."""
    v6o = ':' in outer_src
    v6i = ':' in inner_src
    inner = []
    for k in range(segs):
        ip = IPv6(src=inner_src, dst=inner_dst) if v6i else IP(src=inner_src, dst=inner_dst, id=k + 1, flags='DF')
        inner.append(b(ip / TCP(sport=40000, dport=443, seq=1000 + k * mss, ack=1, flags='A') / rb(mss)))
    ip = IPv6(src=outer_src, dst=outer_dst) if v6o else IP(src=outer_src, dst=outer_dst)
    p = b(ip / UDP(sport=50001, dport=UDP_PORT) / Raw(b''.join(inner)))
    l3 = 40 if v6o else 20
    return vnet(F_NEEDS_CSUM, GSO_UDP_L4, l3 + 8, len(inner[0]), l3, 6), p


def udp_tunnel_gso(outer_src, outer_dst, inner_src, inner_dst, segs=3, mss=400, csum=True):
    """A UDP-tunnel super-packet as a TUN with TUN_F_UDP_TUNNEL_GSO hands it over: outer IP + UDP,
    inner TCP super-packet; gso_type UDP_TUNNEL_IPV4/6 | TCPV4/6, checksum partial at the inner TCP."""
    v6o = ':' in outer_src
    v6i = ':' in inner_src
    ip = IPv6(src=inner_src, dst=inner_dst) if v6i else IP(src=inner_src, dst=inner_dst, flags='DF')
    inner = b(ip / TCP(sport=40000, dport=443, seq=1000, ack=1, flags='PA') / rb(segs * mss))
    op = IPv6(src=outer_src, dst=outer_dst) if v6o else IP(src=outer_src, dst=outer_dst)
    p = b(op / UDP(sport=50002, dport=UDP_PORT) / Raw(inner))
    cs = (40 if v6o else 20) + 8 + (40 if v6i else 20)
    typ = (GSO_UDP_TUNNEL_IPV6 if v6o else GSO_UDP_TUNNEL_IPV4) | (GSO_TCPV6 if v6i else GSO_TCPV4)
    return vnet(F_NEEDS_CSUM | (F_UDP_TUNNEL_CSUM if csum else 0), typ, cs + 20, mss, cs, 16), p


def write_gso_seeds():
    """Inputs with a virtio header of every GSO type, for the offload variants of the front and
    back targets (control bits 6, 5, 4: harness/process-check.ts)."""
    front = [tso(C6, S6), tso(C4, S4), tso(C6, S6, segs=4, mss=96, ecn=2), tso(C4, S4, segs=2, mss=700),
             uso(C6, S6), uso(C4, S4), tso(C6, S6, segs=1, mss=1000)]
    for i, (v, p) in enumerate(front):
        for variant in (0, 1, 2, 5, 6):   # translate, encap, mixed encap, UDP encap (TAP or own split)
            write('front', f'gso-{i}-{variant}', bytes([0x80 | OFF | variant]) + v + p)
            if variant >= 5:
                write('front', f'gso-{i}-{variant}-notap', bytes([0x80 | OFF | NOTAP | variant]) + v + p)
    # one segment too big for the tunnel MTU (1500) once wrapped: the MTU rules (PTB, DF set)
    v, p = tso(C4, S4, segs=1, mss=1480)
    write('front', 'gso-frag-1', bytes([0x80 | OFF | 1]) + v + p)
    # the same without DF: the segment is fragmented (wrapSegments with `fit`), with and without the TAP
    v, p = tso(C4, S4, segs=1, mss=1480, df=False)
    for variant in (1, 5, 5 | NOTAP):
        write('front', f'gso-frag-nodf-{variant}', bytes([0x80 | OFF | variant]) + v + p)
    back = [tso(C6, B6), tso(C4, B4), uso(C6, B6), uso(C4, B4)]
    for i, (v, p) in enumerate(back):
        for variant in (0, 4):
            write('back', f'gso-{i}-{variant}', bytes([0x80 | OFF | GRO | variant]) + v + p)
    tun = [udp_tunnel_uso(S6, B6, C6, S6), udp_tunnel_uso(S4, B4, C4, S4), udp_tunnel_uso(S6, B6, C4, S4),
           udp_tunnel_uso(S4, B4, C6, S6),
           udp_tunnel_gso(S6, B6, C6, S6), udp_tunnel_gso(S4, B4, C4, S4), udp_tunnel_gso(S6, B6, C4, S4),
           udp_tunnel_gso(S4, B4, C6, S6), udp_tunnel_gso(S6, B6, C6, S6, csum=False),
           udp_tunnel_gso(S6, B6, C6, '2001:db8:77::1'), udp_tunnel_gso('2001:db8:dead::1', B6, C6, S6)]
    for i, (v, p) in enumerate(tun):
        write('back', f'gso-udp-{i}', bytes([0x80 | OFF | GRO | 4]) + v + p)
        write('back', f'gso-udp-{i}-nogro', bytes([0x80 | OFF | 4]) + v + p)


def main():
    if sys.argv[1:] == ['gso']:
        write_gso_seeds()
        return
    if sys.argv[1:] == ['udp']:
        # only the UDP tunnel seeds, next to the committed corpus
        write_udp_seeds([b(p) for p in client_packets()])
        return
    for t in ('parse', 'extwalk', 'lbsp', 'icmp', 'decap', 'front', 'back'):
        d = os.path.join(HERE, 'corpus', t)
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.startswith('seed-'):
                    os.remove(os.path.join(d, f))
    vec = vector_packets()
    cl = [b(p) for p in client_packets()]
    bk = [b(p) for p in back_packets()]
    rt = [b(p) for p in return_packets()]
    ic = [b(p) for p in icmp_packets()]
    mf = malformed()
    everything = vec + cl + bk + rt + ic + mf
    for i, p in enumerate(everything):
        write('parse', f'{i}', bytes([0x00]) + p)
        if i % 3 == 0:
            write('parse', f'{i}-nolbsp', bytes([0x01]) + p)
        if p[0] >> 4 == 6 and len(p) >= 40:
            write('extwalk', f'{i}', bytes([0x00, p[6]]) + p[40:])
        write('icmp', f'{i}', bytes([i & 0xff]) + p)
    for i, p in enumerate(rt + [p for p in vec if p[0] >> 4 == 6]):
        write('lbsp', f'{i}', bytes([0x02 | (i & 1)]) + p)
    for i, p in enumerate(bk + vec):
        write('decap', f'{i}', bytes([i & 1]) + p)
    at = [b(p) for p in accepted_tunnels()]
    for i, p in enumerate(cl + mf + ic):
        for variant in (0, 1, 2, 3, 4):    # translate, encap, mixed-family encap, accepting return tunnels, stage 2
            write('front', f'{i}-{variant}', bytes([variant]) + p)
    for i, p in enumerate(at):
        for variant in (3, 4):
            write('front', f'tunnel-{i}-{variant}', bytes([variant]) + p)
    for i, p in enumerate(bk + rt + mf):
        for variant in (0, 1, 2, 3):       # lab back1 (auto), every mode, LBSP stamping, return encapsulation
            write('back', f'{i}-{variant}', bytes([variant]) + p)
    write_udp_seeds(cl)
    # a few with a virtio header (NEEDS_CSUM, no GSO), as an offloading TUN hands them over
    for i, p in enumerate(cl[:8]):
        l4 = 40 if p[0] >> 4 == 6 else 20
        vnet = struct.pack('<BBHHHHH', 1, 0, 0, 0, l4, 16, 1)
        write('front', f'vnet-{i}', bytes([0x80]) + vnet + p)
        write('back', f'vnet-{i}', bytes([0x80]) + vnet + p)
    write_merge_seeds()
    write_gso_seeds()
    for t in ('parse', 'extwalk', 'lbsp', 'icmp', 'decap', 'front', 'back'):
        print(t, len(os.listdir(os.path.join(HERE, 'corpus', t))))


if __name__ == '__main__':
    main()
