#!/usr/bin/python3
"""Packets for test/unit/udp-tunnel.test.ts (front and back processors with IP-in-UDP), and what the
front must emit for the four family pairs, built by scapy 2.5.

Run: /usr/bin/python3 test/vectors/make_udp_tunnel_vectors.py   (writes test/vectors/udp-tunnel.json)

Expected tunnel packets: outer source the configured encap.source4/6, destination the back, hop
limit 65 (encap.hopLimit 64 + the one the kernel's forwarding takes), DSCP/ECN copied, DF copied
(IPv4) or set (IPv6 inner), IPv6 flow label and UDP source port from the flow hash (packet_rules.py),
UDP to 6080, checksums by scapy. The outer IPv4 ID is the worker's sequence: written as 0 here with
the header checksum for ID 0, and the test puts the emitted ID in before comparing.
"""
import json
import os

from scapy.all import IP, IPv6, TCP, UDP, Raw, ICMPv6PacketTooBig, IPv6ExtHdrFragment, fragment6

from packet_rules import flow_hash


def sport(inner):
    """Outer UDP source port (SPEC 3): the dynamic range 49152-65535, 14 bits of the flow hash."""
    h = flow_hash(inner)
    return 0xc000 | ((h ^ (h >> 14)) & 0x3fff)

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 6080
S6, S4, B6, B4, F6, F4 = '2001:db8:5::80', '192.0.2.80', '2001:db8:b::1', '198.51.100.1', '2001:db8:f::1', '192.0.2.1'


def pay(n):
    return Raw(bytes((i * 7) & 255 for i in range(n)))


def fresh(p):
    return p.__class__(bytes(p))


p = {}
p['6in6'] = IPv6(src='2001:db8:c1::10', dst=S6, hlim=64, tc=0x2a, fl=0x12345) / TCP(sport=40000, dport=443, flags='PA', seq=7) / pay(700)
p['4in6'] = IP(src='203.0.113.10', dst=S4, ttl=64, flags='DF', tos=0x2a) / UDP(sport=40001, dport=53) / pay(300)
p['4in4'] = IP(src='203.0.113.74', dst=S4, ttl=64, flags='DF') / TCP(sport=40002, dport=443, flags='S')
p['6in4'] = IPv6(src='2001:db8:c2::10', dst=S6, hlim=64) / UDP(sport=40003, dport=53) / pay(1000)
p['6in6_1452'] = IPv6(src='2001:db8:c1::10', dst=S6) / TCP(sport=40004, dport=443, flags='A') / pay(1452 - 60)
p['6in6_1453'] = IPv6(src='2001:db8:c1::10', dst=S6) / TCP(sport=40004, dport=443, flags='A') / pay(1453 - 60)
p['4in4_nodf_1500'] = IP(src='203.0.113.74', dst=S4, ttl=64, id=99) / UDP(sport=40005, dport=7) / pay(1472)
p['4in4_df_1473'] = IP(src='203.0.113.74', dst=S4, ttl=64, flags='DF') / UDP(sport=40005, dport=7) / pay(1445)
# a fabric router's Packet Too Big about one of our UDP tunnel packets (outer F6 -> B6)
tun = IPv6(src=F6, dst=B6, hlim=63) / UDP(sport=50000, dport=PORT) / p['6in6_1452']
p['ptb_udp'] = IPv6(src='2001:db8:e1::2', dst=F6) / ICMPv6PacketTooBig(mtu=1400) / Raw(bytes(tun)[:1232])
tun_other = IPv6(src=F6, dst=B6, hlim=63) / UDP(sport=50000, dport=PORT + 1) / p['6in6_1452']
p['ptb_udp_other_port'] = IPv6(src='2001:db8:e1::2', dst=F6) / ICMPv6PacketTooBig(mtu=1400) / Raw(bytes(tun_other)[:1232])
# back: hostile UDP tunnels to B (allowedFronts F6/128, F4/32)
inner6 = IPv6(src='2001:db8:c1::10', dst=S6, hlim=63) / UDP(sport=1, dport=2) / pay(20)
inner4 = IP(src='203.0.113.10', dst=S4, ttl=63) / UDP(sport=1, dport=2) / pay(20)
good = IPv6(src=F6, dst=B6) / UDP(sport=50001, dport=PORT) / inner6
p['inner6'] = inner6
p['good6'] = good
p['good4'] = IP(src=F4, dst=B4) / UDP(sport=50001, dport=PORT) / inner4
p['inner4'] = inner4
b = bytearray(bytes(good)); b[46] ^= 0x40
p['bad_csum'] = Raw(bytes(b))
p['bad_len'] = IPv6(src=F6, dst=B6) / UDP(sport=50001, dport=PORT, len=8 + len(inner6) + 8) / inner6
p['wrong_port'] = IPv6(src=F6, dst=B6) / UDP(sport=50001, dport=PORT + 1) / inner6
p['stranger'] = IPv6(src='2001:db8:66::1', dst=B6) / UDP(sport=50001, dport=PORT) / inner6
p['not_service'] = IPv6(src=F6, dst=B6) / UDP(sport=50001, dport=PORT) / IPv6(src='2001:db8:c1::10', dst='2001:db8:77::1') / UDP()
p['nested'] = IPv6(src=F6, dst=B6) / UDP(sport=50001, dport=PORT) / IPv6(src=F6, dst=B6) / UDP(sport=50001, dport=PORT) / inner6
p['gue0'] = IPv6(src=F6, dst=B6) / UDP(sport=50001, dport=PORT) / Raw(b'\x00\x00\x00\x00' + bytes(inner6))
frag_src = IPv6(src=F6, dst=B6) / IPv6ExtHdrFragment(id=0x99) / UDP(sport=50001, dport=PORT) / IPv6(src='2001:db8:c1::10', dst=S6, hlim=63) / UDP(sport=1, dport=2) / pay(1200)
p['frag_inner'] = IPv6(src='2001:db8:c1::10', dst=S6, hlim=63) / UDP(sport=1, dport=2) / pay(1200)
p['frags'] = fragment6(frag_src, 800)

out = {k: ([bytes(x).hex() for x in v] if isinstance(v, list) else bytes(v).hex()) for k, v in p.items()}

expect = {}
for k, fam in (('6in6', 6), ('4in6', 6), ('4in4', 4), ('6in4', 4)):
    inner = fresh(p[k])
    is6 = IPv6 in inner
    tos = inner[IPv6].tc if is6 else inner[IP].tos
    u = UDP(sport=sport(inner), dport=PORT) / Raw(bytes(inner))
    if fam == 6:
        o = IPv6(src=F6, dst=B6, hlim=65, tc=tos, fl=flow_hash(inner)) / u
    else:
        o = IP(src=F4, dst=B4, ttl=65, tos=tos, id=0, flags='DF' if (is6 or inner[IP].flags.DF) else 0) / u
    expect[k] = bytes(fresh(o)).hex()
out['expect'] = expect

with open(os.path.join(HERE, 'udp-tunnel.json'), 'w') as f:
    json.dump(out, f, indent=1)
    f.write('\n')
print('udp tunnel packets', len(out) - 1, 'expected', len(expect))
