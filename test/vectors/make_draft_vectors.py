#!/usr/bin/python3
"""Vectors for the front's and back's tunnel paths (draft-front.json, draft-back.json), built by scapy 2.5.

Run: /usr/bin/python3 test/vectors/make_draft_vectors.py   (writes both files next to this file)

`packets`: what test/unit/draft-front.test.ts and draft-back.test.ts send. `expected`: what the
processor must emit for them, built here from the rules in packet_rules.py (ICMP errors with their
quote, translated packets, re-wrapped inner packets, fragments), not recorded from our code. The
processors in those tests run with the clock at 1 000 000 ms, which seeds the outer IPv4 ID and
IPv6 fragment ID sequences (packet_rules.Ids). Deterministic: payloads are fixed byte patterns.
"""
import json
import os
import sys

from scapy.all import (IP, IPv6, TCP, UDP, ICMP, ICMPv6PacketTooBig, ICMPv6TimeExceeded, ICMPv6DestUnreach,
                       ICMPv6EchoRequest, IPv6ExtHdrFragment, Raw, fragment, fragment6)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
from packet_rules import h, fresh, Ids, wrap, translated, err6, err4, flow_hash  # noqa: E402

CLOCK = 1_000_000


def hexes(v):
    return [h(x) for x in v] if isinstance(v, list) else h(v)


# ================================ front ======================================================
S6, S4 = '2001:db8:5::80', '192.0.2.80'
C6, C4, C6b, C4b = '2001:db8:c1::10', '203.0.113.10', '2001:db8:c2::10', '203.0.113.74'
B6, B4 = '2001:db8:b::1', '198.51.100.1'
B2_6, B2_4 = '2001:db8:b::2', '198.51.100.2'


def pay(n, k=13):
    return Raw(bytes((i * k) & 255 for i in range(n)))


def tcp6(n, h_=64, src=C6):
    return IPv6(src=src, dst=S6, hlim=h_) / TCP(sport=40000, dport=80, flags='A', seq=1) / pay(n - 60)


def tcp4(n, df=True, h_=64, src=C4):
    return IP(src=src, dst=S4, ttl=h_, id=4242, flags='DF' if df else 0) / TCP(sport=40000, dport=80, flags='A') / pay(n - 40)


def udp4(n, df, src=C4):
    return IP(src=src, dst=S4, ttl=64, id=777, flags='DF' if df else 0) / UDP(sport=5000, dport=7) / pay(n - 28)


def udp6(n, h_=64, src=C6):
    return IPv6(src=src, dst=S6, hlim=h_) / UDP(sport=5000, dport=7) / pay(n - 48)


p = {}
p['v6_1500'] = tcp6(1500)
p['v4df_1500'] = tcp4(1500)
p['v4nodf_1500'] = udp4(1500, False)
p['v6_1280'] = udp6(1280)
p['v6_1000'] = udp6(1000)
p['v6_translate_h1'] = tcp6(100, h_=1, src=C6b)
p['v4_translate_h1'] = tcp4(100, h_=1, src=C4b)
p['v6_encap_h0'] = tcp6(100, h_=0)
p['icmp_err_1500'] = IPv6(src=C6, dst=S6) / ICMPv6DestUnreach(code=4) / Raw(bytes(1452))
p['echo_1500'] = IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=1, seq=1) / Raw(bytes(1452))
# ICMP errors from the fabric about our tunnel packets (quoted: outer S -> B, inner client -> S)
tun6 = IPv6(src=S6, dst=B6, nh=41, hlim=63) / tcp6(1500)
tun4 = IP(src=S4, dst=B4, proto=4, ttl=63, flags='DF', id=9) / tcp4(1500)
p['ptb_fabric'] = IPv6(src='2001:db8:e1::2', dst=S6) / ICMPv6PacketTooBig(mtu=1400) / Raw(bytes(tun6)[:1232])
p['ptb_fabric_small'] = IPv6(src='2001:db8:e1::2', dst=S6) / ICMPv6PacketTooBig(mtu=1000) / Raw(bytes(tun6)[:1232])
p['ptb_forged_dst'] = IPv6(src='2001:db8:e1::2', dst=S6) / ICMPv6PacketTooBig(mtu=1300) / Raw(bytes(IPv6(src=S6, dst='2001:db8:b::99', nh=41) / tcp6(1500))[:1232])
p['ptb_forged_src'] = IPv6(src='2001:db8:e1::2', dst=S6) / ICMPv6PacketTooBig(mtu=1300) / Raw(bytes(IPv6(src='2001:db8:66::1', dst=B6, nh=41) / tcp6(1500))[:1232])
p['fn_fabric'] = IP(src='203.0.113.138', dst=S4) / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(bytes(tun4)[:548])
p['fn_fabric_nomtu'] = IP(src='203.0.113.138', dst=S4) / ICMP(type=3, code=4, nexthopmtu=0) / Raw(bytes(tun4)[:548])
p['fn_fabric_short'] = IP(src='203.0.113.138', dst=S4) / ICMP(type=3, code=4, nexthopmtu=1300) / Raw(bytes(tun4)[:28])
p['unreach_fabric'] = IP(src='203.0.113.138', dst=S4) / ICMP(type=3, code=1) / Raw(bytes(tun4)[:548])
# tunnels to the front (acceptTunnelFrom: 2001:db8:b::/64, 198.51.100.0/24, 2001:db8:f1::/64)
G6, G4 = '2001:db8:f::1', '192.0.2.81'
p['ret6'] = IPv6(src=B6, dst=G6, nh=41, hlim=63) / IPv6(src=S6, dst=C6, hlim=63) / TCP(sport=80, dport=40000, flags='SA') / pay(20)
p['ret4'] = IP(src=B4, dst=G4, proto=4, ttl=63) / IP(src=S4, dst=C4, ttl=63) / TCP(sport=80, dport=40000, flags='SA') / pay(20)
p['ret_neither'] = IPv6(src=B6, dst=G6, nh=41) / IPv6(src='2001:db8:77::1', dst=C6) / UDP(sport=1, dport=2)
p['ret_unauth'] = IPv6(src='2001:db8:99::1', dst=G6, nh=41) / IPv6(src=S6, dst=C6) / UDP(sport=1, dport=2)
stage2_in = IPv6(src=C6, dst=S6, hlim=40) / TCP(sport=40001, dport=80, flags='S')
stage2_tr = IPv6(src=C6b, dst=S6, hlim=40) / TCP(sport=40001, dport=80, flags='S')
stage2_h1 = IPv6(src=C6, dst=S6, hlim=1) / TCP(sport=40002, dport=80, flags='S')
p['stage2'] = IPv6(src='2001:db8:f1::5', dst=G6, nh=41, hlim=62) / stage2_in
p['stage2_translate'] = IPv6(src='2001:db8:f1::5', dst=G6, nh=41, hlim=62) / stage2_tr
p['stage2_h1'] = IPv6(src='2001:db8:f1::5', dst=G6, nh=41) / stage2_h1
p['nested_same'] = IPv6(src='2001:db8:f1::5', dst=G6, nh=41) / IPv6(src='2001:db8:f1::5', dst=G6, nh=41) / IPv6(src=C6, dst=S6) / UDP()
p['client_tunnel_to_s'] = IPv6(src=C6, dst=S6, nh=41) / IPv6(src='2001:db8:aa::1', dst='2001:db8:bb::1') / UDP()
big_in = IPv6(src=C6, dst=S6, hlim=40) / UDP(sport=6000, dport=7) / pay(1200)
big = IPv6(src='2001:db8:f1::5', dst=G6) / IPv6ExtHdrFragment(id=0x5151) / big_in
p['stage2_frags'] = fragment6(big, 700)
P = {k: (v if isinstance(v, list) else IPv6(bytes(v)) if bytes(v)[0] >> 4 == 6 else IP(bytes(v))) for k, v in p.items()}

ids = Ids((CLOCK & 0xffff) + 1)
outer_1280 = IPv6(src=S6, dst=B6, hlim=65, tc=0, fl=flow_hash(P['v6_1280']), nh=44) / IPv6ExtHdrFragment(nh=41, id=ids.next_frag()) / P['v6_1280']
quoted6 = bytes(tcp6(1500))[:1232 - 40]   # what a PTB quoting 1232 bytes of the tunnel packet holds of the inner one
quoted4 = bytes(tcp4(1500))[:548 - 20]
e = {}
e['ptb_1460'] = err6(ICMPv6PacketTooBig(mtu=1460), P['v6_1500'], S6)
e['fn_1480'] = err4(3, 4, 1480, P['v4df_1500'], S4, 1)
# tunnel MTU 1480 (4in4 over 1500): IPv4 fragments of 20 + 1456 bytes, each then wrapped
e['v4nodf_inner_fragments'] = [IP(bytes(f)) for f in fragment(P['v4nodf_1500'], fragsize=1456)]
e['v6_1280_outer_fragments'] = [IPv6(bytes(f)) for f in fragment6(outer_1280, 1280)]
e['relay_ptb_1360'] = fresh(IPv6(src=S6, dst=C6, hlim=64) / ICMPv6PacketTooBig(mtu=1360) / Raw(quoted6))
e['ptb_1360'] = err6(ICMPv6PacketTooBig(mtu=1360), P['v6_1500'], S6)
e['relay_ptb_1280'] = fresh(IPv6(src=S6, dst=C6, hlim=64) / ICMPv6PacketTooBig(mtu=1280) / Raw(quoted6))
e['relay_fn_1380'] = fresh(IP(src=S4, dst=C4, ttl=64, tos=0xc0, id=1, flags=0) / ICMP(type=3, code=4, nexthopmtu=1380) / Raw(quoted4))
e['v6_translate_h1'] = translated(P['v6_translate_h1'], B2_6)
e['v4_translate_h1'] = translated(P['v4_translate_h1'], B2_4)
e['te_v6_encap_h0'] = err6(ICMPv6TimeExceeded(code=0), P['v6_encap_h0'], S6)
e['stage2'] = wrap(translated(stage2_in, S6, -1), 6, S6, B6)
e['stage2_translate'] = translated(stage2_tr, B2_6, 0)
e['te_stage2_h1'] = err6(ICMPv6TimeExceeded(code=0), IPv6(bytes(stage2_h1)), S6)
e['stage2_reassembled'] = wrap(translated(big_in, S6, -1), 6, S6, B6)
e['ptb_echo_1460'] = err6(ICMPv6PacketTooBig(mtu=1460), P['echo_1500'], S6)

with open(os.path.join(HERE, 'draft-front.json'), 'w') as f:
    json.dump({'packets': {k: hexes(v) for k, v in P.items()}, 'expected': {k: hexes(v) for k, v in e.items()}}, f, indent=1)
    f.write('\n')

# ================================ back =======================================================
BG6 = '2001:db8:f:1::1'
bp = {}
bpay = lambda n: pay(n, 11)  # noqa: E731
bp['ret6'] = IPv6(src=S6, dst=C6, hlim=63) / TCP(sport=80, dport=40000, flags='A') / bpay(500)
bp['ret6_big'] = IPv6(src=S6, dst=C6, hlim=63) / TCP(sport=80, dport=40000, flags='A') / bpay(1440)
bp['ret4_nodf'] = IP(src=S4, dst=C4, ttl=63, id=31, flags=0) / UDP(sport=7, dport=5000) / bpay(1472)
bp['ret4_df'] = IP(src=S4, dst=C4, ttl=63, id=32, flags='DF') / TCP(sport=80, dport=40000, flags='A') / bpay(1460)
bp['fwd_translate'] = IPv6(src=C6, dst=B6, hlim=5) / TCP(sport=40000, dport=80, flags='S')
inner = IPv6(src=C6, dst=S6, hlim=63) / UDP(sport=5000, dport=7) / bpay(1232)
bp['outer_frags'] = fragment6(IPv6(src=S6, dst=B6) / IPv6ExtHdrFragment(id=0x77) / inner, 1280)
bp['inner'] = inner
bp['unauth_frags'] = fragment6(IPv6(src='2001:db8:66::1', dst=B6) / IPv6ExtHdrFragment(id=0x78) / inner, 1280)
BP = {k: (v if isinstance(v, list) else IPv6(bytes(v)) if bytes(v)[0] >> 4 == 6 else IP(bytes(v))) for k, v in bp.items()}
be = {}
be['ret6_wrapped'] = wrap(BP['ret6'], 6, B6, BG6)
be['ptb_1460'] = err6(ICMPv6PacketTooBig(mtu=1460), BP['ret6_big'], B6)
be['fn_1460'] = err4(3, 4, 1460, BP['ret4_df'], B4, 1)
# tunnel MTU 1460 (4in6 over 1500): fragments of 20 + 1440 bytes, each wrapped toward the gateway
be['ret4_nodf_wrapped_fragments'] = [wrap(IP(bytes(f)), 6, B6, BG6) for f in fragment(BP['ret4_nodf'], fragsize=1440)]
be['fwd_translate'] = translated(BP['fwd_translate'], S6)
with open(os.path.join(HERE, 'draft-back.json'), 'w') as f:
    json.dump({'packets': {k: hexes(v) for k, v in BP.items()}, 'expected': {k: hexes(v) for k, v in be.items()}}, f, indent=1)
    f.write('\n')
print('draft-front', len(P), 'packets', len(e), 'expected; draft-back', len(BP), 'packets', len(be), 'expected')
