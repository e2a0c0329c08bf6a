#!/usr/bin/python3
"""Fragmenter and reassembly vectors (fragment.json), built by scapy 2.5.

Run: /usr/bin/python3 test/vectors/make_fragment_vectors.py   (writes test/vectors/fragment.json)

- ipv4: datagrams and, for each MTU, the fragments RFC 791 says to cut: the payload in steps of
  the largest multiple of 8 that fits beside fragment 0's header, fragment 0 with every option,
  later fragments with the copied ones only (copy flag set), MF on all but the last (all of them
  when the datagram was itself a non-last fragment), offsets continuing the datagram's own. Every
  set is checked here: scapy's defragment() gives the datagram back.
- ipv6: outer tunnel packets and the fragments RFC 2473 7.1 / RFC 8200 4.5 give at an MTU (the
  Fragment header after the outer header, identification 0xabcd1234), built by scapy's fragment6()
  and checked with defragment6().
- reassembly: scapy's own fragment() / fragment6() pieces of tunnel packets and the whole packet
  (for IPv6 without the Fragment header) that a reassembler must give back.
Deterministic: no randomness; payloads are fixed byte patterns.
"""
import json
import os

from scapy.all import (IP, IPv6, UDP, Raw, IPv6ExtHdrFragment, IPOption_Router_Alert, IPOption_RR,
                       fragment, fragment6, defragment, defragment6)

HERE = os.path.dirname(os.path.abspath(__file__))


def h(p):
    return bytes(p).hex()


def v4(ident, n, opts=False, flags=0, frag=0):
    o = [IPOption_Router_Alert(), IPOption_RR()] if opts else []
    return IP(bytes(IP(src='203.0.113.10', dst='192.0.2.80', id=ident, flags=flags, frag=frag, ttl=61, tos=0xb8, options=o)
                    / UDP(sport=4000, dport=7) / Raw(bytes((i * 7) & 255 for i in range(n)))))


def v4_fragments(p, mtu):
    """RFC 791 section 3.2 fragmentation of p for mtu, built field by field."""
    b = bytes(p)
    ihl = (b[0] & 15) * 4
    total = len(b)
    if total <= mtu:
        return [p]
    payload = b[ihl:total]
    step = (mtu - ihl) // 8 * 8
    copied = [o for o in p.options if o.copy_flag]
    more = bool(p.flags.MF)
    out = []
    for k, start in enumerate(range(0, len(payload), step)):
        chunk = payload[start:start + step]
        last = start + step >= len(payload)
        f = IP(src=p.src, dst=p.dst, id=p.id, ttl=p.ttl, tos=p.tos, proto=p.proto,
               flags='MF' if (not last or more) else 0, frag=p.frag + start // 8,
               options=p.options if k == 0 else copied) / Raw(chunk)
        out.append(IP(bytes(f)))
    return out


ipv4 = []
ident = 100
for n in (1, 100, 1472, 1473, 2999, 8000):
    for mtu in (68, 576, 1006, 1280, 1480):
        ipv4.append({'desc': f'{n}-byte UDP payload, MTU {mtu}', 'mtu': mtu, 'input': v4(ident, n)})
        ident += 1
for mtu in (96, 600, 1400):
    ipv4.append({'desc': f'3000 bytes with Router Alert + Record Route options, MTU {mtu}', 'mtu': mtu, 'opts': True, 'input': v4(ident, 3000, opts=True)})
    ident += 1
ipv4.append({'desc': 'a non-last fragment (offset 800, MF) cut further at MTU 600', 'mtu': 600, 'isFragment': True, 'input': v4(9, 1500, flags='MF', frag=100)})
for c in ipv4:
    p = c['input']
    fr = v4_fragments(p, c['mtu'])
    assert all(len(f) <= c['mtu'] for f in fr), c['desc']
    if not c.get('isFragment'):
        d = defragment([IP(bytes(f)) for f in fr])
        assert len(d) == 1 and bytes(d[0]) == bytes(p), c['desc']
    c['input'] = h(p)
    c['fragments'] = [h(f) for f in fr]

ipv6 = []
for n, mtu in ((1000, 1280), (1232, 1300), (1240, 1350), (2000, 1280)):
    inner = IPv6(src='2001:db8:c1::10', dst='2001:db8:5::80', hlim=63) / UDP(sport=4000, dport=7) / Raw(bytes((i * 5) & 255 for i in range(n)))
    p = IPv6(bytes(IPv6(src='2001:db8:5::80', dst='2001:db8:b::1', nh=41, hlim=64, fl=0x12345) / inner))
    withfh = IPv6(src='2001:db8:5::80', dst='2001:db8:b::1', nh=44, hlim=64, fl=0x12345) / IPv6ExtHdrFragment(nh=41, id=0xabcd1234) / inner
    fr = [IPv6(bytes(f)) for f in fragment6(withfh, mtu)]
    assert all(len(f) <= mtu for f in fr)
    d = defragment6(fr)
    assert bytes(d) == bytes(p), (bytes(d)[:60].hex(), bytes(p)[:60].hex())
    ipv6.append({'desc': f'{len(p)}-byte 6in6 packet, MTU {mtu}', 'mtu': mtu, 'id': 0xabcd1234, 'input': h(p), 'fragments': [h(f) for f in fr]})

reasm = []
for v, ident, n, size in ((4, 1, 1400, 576), (4, 2, 1800, 1000), (6, 3, 1200, 600), (6, 4, 1300, 1280)):
    if v == 4:
        p = IP(src='198.51.100.7', dst='198.51.100.1', id=ident, proto=4) / IP(src='203.0.113.10', dst='192.0.2.80') / UDP(sport=1, dport=2) / Raw(b'q' * n)
        fr = fragment(p, fragsize=size)
    else:
        q = IPv6(src='2001:db8:5::80', dst='2001:db8:b::1') / IPv6ExtHdrFragment(id=ident) / IPv6(src='2001:db8:c1::10', dst='2001:db8:5::80') / UDP(sport=1, dport=2) / Raw(b'q' * n)
        fr = fragment6(q, size)
        p = IPv6(src='2001:db8:5::80', dst='2001:db8:b::1') / IPv6(src='2001:db8:c1::10', dst='2001:db8:5::80') / UDP(sport=1, dport=2) / Raw(b'q' * n)
    reasm.append({'desc': f'IPv{v} {n}-byte tunnel packet in pieces of {size}', 'whole': h(p), 'fragments': [h(f) for f in fr]})

with open(os.path.join(HERE, 'fragment.json'), 'w') as f:
    json.dump({'ipv4': ipv4, 'ipv6': ipv6, 'reassembly': reasm}, f, indent=1)
    f.write('\n')
print('ipv4', len(ipv4), 'ipv6', len(ipv6), 'reassembly', len(reasm))
