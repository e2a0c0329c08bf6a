#!/usr/bin/python3
"""What a back's TUN hands over for IP-in-UDP tunnels whose TCP bursts the kernel carried as
UDP-tunnel super-packets (test/unit/tunnel-gso-read.test.ts), built by scapy 2.5.

Run: /usr/bin/python3 test/vectors/make_tunnel_gso_read_vectors.py   (writes test/vectors/tunnel-gso-read.json)

`gso`: a TUN with a 24-byte virtio header and TUN_F_UDP_TUNNEL_GSO reads the super-packet whole:
one outer IP + UDP header (UDP length the whole, checksum field the outer pseudo-header sum, filled
per segment by the kernel) before an inner TCP super-packet (checksum field the inner pseudo-header
sum); virtio flags NEEDS_CSUM | UDP_TUNNEL_CSUM, gso_type UDP_TUNNEL_IPV4 (0x20) / UDP_TUNNEL_IPV6
(0x40) | TCPV4 / TCPV6, csum_start the inner TCP header, csum_offset 16 (measured on Linux 6.18). The
back must queue exactly the inner super-packet with a TSO header: flags NEEDS_CSUM, gso_type
TCPV4/TCPV6, hdr_len and csum_start less the outer length, gso_size kept, the wire segment count.
`lco`: a TUN without UDP_TUNNEL_GSO gets the kernel's own segments: each a complete tunnel packet
whose outer UDP checksum is computed for the finished bytes while the inner TCP checksum is still
partial (NEEDS_CSUM, csum_start the inner TCP header, local checksum offload); the back must
finish the inner checksum, then check the outer one, and queue the inner packet scapy built.
"""
import json
import os

from scapy.all import IP, IPv6, TCP, UDP, Raw

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 6080
S6, S4, B6, B4, F6, F4 = '2001:db8:5::80', '192.0.2.80', '2001:db8:b::1', '198.51.100.1', '2001:db8:f::1', '192.0.2.1'
C6, C4 = '2001:db8:c1::10', '203.0.113.10'
MSS = 1000


def fold(s):
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def words16(b):
    if len(b) % 2:
        b += b'\x00'
    return sum((b[i] << 8) | b[i + 1] for i in range(0, len(b), 2))


def pseudo(ipb, l4off, proto):
    """Folded pseudo-header sum (not complemented) of the packet ipb: the NEEDS_CSUM seed."""
    v6 = ipb[0] >> 4 == 6
    addrs = ipb[8:40] if v6 else ipb[12:20]
    return fold(words16(bytes(addrs)) + proto + len(ipb) - l4off)


def inner_pkt(fam, n, dst=None, flags='A'):
    t = TCP(sport=40000, dport=443, flags=flags, seq=1000, ack=5000, window=502,
            options=[('NOP', None), ('NOP', None), ('Timestamp', (11, 22))]) / Raw(bytes((i * 7) & 255 for i in range(n)))
    if fam == 6:
        return bytes(IPv6(src=C6, dst=dst or S6, hlim=63, fl=0x12345) / t)
    return bytes(IP(src=C4, dst=dst or S4, ttl=63, id=100, flags='DF') / t)


def partial_tcp(ipb):
    """The inner packet with its TCP checksum field holding the pseudo-header sum."""
    b = bytearray(ipb)
    l4 = 40 if b[0] >> 4 == 6 else (b[0] & 15) * 4
    b[l4 + 16:l4 + 18] = pseudo(b, l4, 6).to_bytes(2, 'big')
    return bytes(b), l4


def outer(fam, body, full_checksum):
    u = UDP(sport=50001, dport=PORT, len=8 + len(body))
    o = (IPv6(src=F6, dst=B6, hlim=64) if fam == 6 else IP(src=F4, dst=B4, ttl=64, id=7, flags='DF')) / u / Raw(body)
    b = bytearray(bytes(o))
    ol = 40 if fam == 6 else 20
    if not full_checksum:
        b[ol + 6:ol + 8] = pseudo(b, ol, 17).to_bytes(2, 'big')
    return bytes(b), ol + 8


cases = {}
for name, ofam, ifam in (('6in6', 6, 6), ('4in4', 4, 4), ('4in6', 6, 4), ('6in4', 4, 6)):
    inner = inner_pkt(ifam, 3 * MSS + 200)
    pin, l4 = partial_tcp(inner)
    sup, olen = outer(ofam, pin, False)
    tcp_type = 4 if ifam == 6 else 1
    hdrs = l4 + 32
    cases['gso_' + name] = {
        'in': sup.hex(),
        'vnet': [1 | 8, (0x40 if ofam == 6 else 0x20) | tcp_type, olen + hdrs, MSS, olen + l4, 16],
        'out': [pin.hex()],
        'outVnet': [[1, tcp_type, hdrs, MSS, l4, 16, 4]],
        'drops': {},
    }
    # one segment of the kernel's own segmentation: outer checksum for the finished bytes
    seg = inner_pkt(ifam, MSS)
    full, olen = outer(ofam, seg, True)
    pseg, l4 = partial_tcp(seg)
    b = bytearray(full)
    b[olen:] = pseg
    cases['lco_' + name] = {
        'in': bytes(b).hex(),
        'vnet': [1, 0, 0, 0, olen + l4, 16],
        'out': [seg.hex()],
        'outVnet': [[0, 0, 0, 0, 0, 0, 0]],
        'drops': {},
    }

base = cases['gso_6in6']
# (no corrupt-payload case for `lco`: with the inner checksum partial the outer one covers only
# the headers, and NEEDS_CSUM packets come from this host's kernel, never from a wire)
# a kernel segment whose outer UDP header was damaged: refused
bad = bytearray(bytes.fromhex(cases['lco_6in6']['in'])); bad[41] ^= 0x04
cases['lco_bad_outer'] = {**cases['lco_6in6'], 'in': bytes(bad).hex(), 'out': [], 'outVnet': [], 'drops': {'malformed': 1}}
# virtio headers that do not describe the packet
cases['gso_type_mismatch'] = {**base, 'vnet': [9, 0x40 | 1] + base['vnet'][2:], 'out': [], 'outVnet': [], 'drops': {'malformed': 1}}
cases['gso_outer_family'] = {**base, 'vnet': [9, 0x20 | 4] + base['vnet'][2:], 'out': [], 'outVnet': [], 'drops': {'malformed': 1}}
cases['gso_csum_start'] = {**base, 'vnet': base['vnet'][:4] + [base['vnet'][4] + 4, 16], 'out': [], 'outVnet': [], 'drops': {'malformed': 1}}
cases['gso_no_needs_csum'] = {**base, 'vnet': [8] + base['vnet'][1:], 'out': [], 'outVnet': [], 'drops': {'malformed': 1}}
# the inner destination is not a service
ns_in, _ = partial_tcp(inner_pkt(6, 3 * MSS + 200, dst='2001:db8:77::1'))
cases['gso_not_service'] = {**base, 'in': outer(6, ns_in, False)[0].hex(), 'out': [], 'outVnet': [], 'drops': {'not_service': 1}}
# UDP length beyond the packet
bl = bytearray(bytes.fromhex(base['in'])); bl[44:46] = (int.from_bytes(bl[44:46], 'big') + 8).to_bytes(2, 'big')
cases['gso_udp_length'] = {**base, 'in': bytes(bl).hex(), 'out': [], 'outVnet': [], 'drops': {'malformed': 1}}

with open(os.path.join(HERE, 'tunnel-gso-read.json'), 'w') as f:
    json.dump(cases, f, indent=1)
    f.write('\n')
print('tunnel gso read cases', len(cases))
