#!/usr/bin/python3
"""UDP-tunnel super-packets for the back's merged output (test/unit/tunnel-merge.test.ts), built by
scapy 2.5.

Run: /usr/bin/python3 test/vectors/make_tunnel_merge_vectors.py   (writes test/vectors/tunnel-merge.json)

Each case is what the back reads from its TUN when GRO on the way merged same-flow tunnel packets:
one outer IP + UDP header (to the back's udpPort, from an allowed front) followed by the inner
packets, all the same length (the UDP_L4 gso_size) except perhaps the last. `expect` is what the back
must queue, in order: consecutive inner TCP segments of one flow (next sequence number, only ACK and
a final PSH, no IP options or extension headers, valid checksum) become one TSO super-packet: the
first segment's headers with the total length (IPv4 header checksum redone), the payloads appended,
the TCP checksum field holding the folded pseudo-header sum (virtio NEEDS_CSUM), PSH if the last had
it, and the virtio header flags NEEDS_CSUM, gso_type TCPV4/TCPV6, hdr_len, gso_size = the first
segment's payload, csum_start = the TCP header, csum_offset 16, and the wire segment count. Anything
else is the inner packet unchanged with an all-zero virtio header.
"""
import json
import os

from scapy.all import IP, IPv6, IPv6ExtHdrDestOpt, TCP, UDP, Raw

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 6080
S6, S4, B6, B4, F6, F4 = '2001:db8:5::80', '192.0.2.80', '2001:db8:b::1', '198.51.100.1', '2001:db8:f::1', '192.0.2.1'
C6, C4 = '2001:db8:c1::10', '203.0.113.10'
MSS = 1000


def pay(n, k):
    return bytes(((i * 7) + k * 13) & 255 for i in range(n))


def seg(fam, seq, data, flags='A', sport=40000, dst=None, id_=100, ipopts=False, ext=False, tos=0):
    """One inner TCP segment of the client's flow toward the service."""
    t = TCP(sport=sport, dport=443, flags=flags, seq=seq, ack=5000, window=502,
            options=[('NOP', None), ('NOP', None), ('Timestamp', (11, 22))])
    if fam == 6:
        ip = IPv6(src=C6, dst=dst or S6, hlim=63, tc=tos, fl=0x12345)
        if ext:
            return bytes(ip / IPv6ExtHdrDestOpt() / t / Raw(data))
        return bytes(ip / t / Raw(data))
    ip = IP(src=C4, dst=dst or S4, ttl=63, tos=tos, id=id_, flags='DF', options=[b'\x01\x01\x01\x00'] if ipopts else [])
    return bytes(ip / t / Raw(data))


def fold(s):
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def words16(b):
    if len(b) % 2:
        b += b'\x00'
    return sum((b[i] << 8) | b[i + 1] for i in range(0, len(b), 2))


def merged(segs):
    """The TSO super-packet the back must write for consecutive segments `segs` (bytes each)."""
    first = segs[0]
    v6 = first[0] >> 4 == 6
    l4 = 40 if v6 else 20
    doff = (first[l4 + 12] >> 4) * 4
    hdrs = l4 + doff
    payloads = [s[hdrs:] for s in segs]
    b = bytearray(first[:hdrs] + b''.join(payloads))
    total = len(b)
    if v6:
        b[4:6] = (total - 40).to_bytes(2, 'big')
    else:
        b[2:4] = total.to_bytes(2, 'big')
        b[10:12] = b'\x00\x00'
        b[10:12] = (~fold(words16(bytes(b[:20]))) & 0xffff).to_bytes(2, 'big')
    if segs[-1][l4 + 13] & 0x08:
        b[l4 + 13] |= 0x08
    l4len = total - l4
    addrs = b[8:40] if v6 else b[12:20]
    b[l4 + 16:l4 + 18] = fold(words16(bytes(addrs)) + 6 + l4len).to_bytes(2, 'big')
    vnet = [1, 4 if v6 else 1, hdrs, len(payloads[0]), l4, 16, len(segs)]
    return {'hex': bytes(b).hex(), 'vnet': vnet}


def alone(s):
    return {'hex': s.hex(), 'vnet': [0, 0, 0, 0, 0, 0, 0]}


def tunnel(outer_fam, inners):
    """The USO super-packet: one outer header, the inner packets back to back."""
    body = b''.join(inners)
    u = UDP(sport=50001, dport=PORT, len=8 + len(body), chksum=0x1234)  # cut recomputes per segment
    if outer_fam == 6:
        o = IPv6(src=F6, dst=B6, hlim=64) / u / Raw(body)
    else:
        o = IP(src=F4, dst=B4, ttl=64, id=7, flags='DF') / u / Raw(body)
    return bytes(o)


cases = {}


def case(name, outer_fam, inners, expect, drops=None):
    sizes = {len(i) for i in inners[:-1]}
    assert len(sizes) <= 1 and (not sizes or len(inners[-1]) <= min(sizes)), name
    cases[name] = {
        'super': tunnel(outer_fam, inners).hex(),
        'outer': 28 if outer_fam == 4 else 48,
        'gso': len(inners[0]),
        'expect': expect,
        'drops': drops or {},
    }


for name, outer, inner in (('6in6', 6, 6), ('4in4', 4, 4), ('4in6', 6, 4), ('6in4', 4, 6)):
    # four full segments and a short tail with PSH: one super-packet of 5
    s = [seg(inner, 1000 + k * MSS, pay(MSS, k), id_=100 + k) for k in range(4)]
    s.append(seg(inner, 1000 + 4 * MSS, pay(300, 4), flags='PA', id_=104))
    case(name, outer, s, [merged(s)])

# another flow in the middle ends the run; the flow's next segment starts a new one
A = [seg(6, 1000 + k * MSS, pay(MSS, k)) for k in range(4)]
Bf = seg(6, 9000, pay(MSS, 9), sport=40001)
case('two_flows', 6, [A[0], A[1], Bf, A[2], A[3]], [merged(A[:2]), alone(Bf), merged(A[2:4])])
# a sequence gap: two runs
G = [seg(6, 1000 + k * MSS, pay(MSS, k)) for k in (0, 1, 3, 4)]
case('seq_gap', 6, G, [merged(G[:2]), merged(G[2:])])
# FIN (not ACK/PSH only) is never merged; PSH ends a run (the next segment starts a new one)
F = [seg(6, 1000, pay(MSS, 0)), seg(6, 1000 + MSS, pay(MSS, 1)), seg(6, 1000 + 2 * MSS, pay(MSS, 2), flags='FA')]
case('fin', 6, F, [merged(F[:2]), alone(F[2])])
P = [seg(6, 1000 + k * MSS, pay(MSS, k), flags='PA' if k == 1 else 'A') for k in range(4)]
case('psh_ends_run', 6, P, [merged(P[:2]), merged(P[2:])])
# inner IPv4 options / an IPv6 extension header: handed on one by one
O = [seg(4, 1000 + k * MSS, pay(MSS, k), id_=100 + k, ipopts=True) for k in range(3)]
case('ipv4_options', 4, O, [alone(x) for x in O])
E = [seg(6, 1000 + k * MSS, pay(MSS, k), ext=True) for k in range(3)]
case('ipv6_ext', 6, E, [alone(x) for x in E])
# IPv4 IDs not consecutive: the kernel's GRO would not merge them either
I = [seg(4, 1000 + k * MSS, pay(MSS, k), id_=100 + 2 * k) for k in range(2)]
case('ipv4_id_gap', 4, I, [alone(x) for x in I])
# a corrupt inner TCP checksum is never given a fresh one: that segment goes on as it came
C = [seg(6, 1000 + k * MSS, pay(MSS, k)) for k in range(4)]
bad = bytearray(C[1]); bad[60 + 12 + 5] ^= 0x01; C[1] = bytes(bad)
case('bad_inner_checksum', 6, C, [alone(C[0]), alone(C[1]), merged(C[2:])])
# a segment whose inner destination is not a service is dropped (counted); the rest cannot join
# across the gap it leaves
N = [seg(6, 1000 + k * MSS, pay(MSS, k)) for k in range(4)]
N[1] = seg(6, 1000 + MSS, pay(MSS, 1), dst='2001:db8:77::1')
case('not_service', 6, N, [alone(N[0]), merged(N[2:])], {'not_service': 1})

with open(os.path.join(HERE, 'tunnel-merge.json'), 'w') as f:
    json.dump(cases, f, indent=1)
    f.write('\n')
print('tunnel merge cases', len(cases))
