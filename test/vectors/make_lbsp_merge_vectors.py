#!/usr/bin/python3
"""LBSP stamping vectors for replies that already carry a final Destination Options header,
built by scapy 2.5 (an independent implementation).

Run: /usr/bin/python3 test/vectors/make_lbsp_merge_vectors.py   (writes test/vectors/lbsp-merge.json)

The back merges the LBSP option into a server's own final Destination Options header (SPEC 4 and 5,
docs/lbsp.md): every non-padding option stays as it was, trailing padding goes, Pad1/PadN put the
LBSP option type at 8n+6 (protocol-notes section 2), and the header ends right after the option.
Each expected packet is built from scratch by scapy from that description: Payload Length, Hdr Ext
Len, the chain and every L4 checksum are scapy's, not copied from the input, so a codec that broke
any of them (or the checksum, which must not need an update) differs from the vector. Each expected
packet is dissected back by scapy here: the LBSP option is found among the options, the server's
options are there, and its checksums are the ones scapy computes.

A vector: {desc, input, server, client, mtu?, output?, lbspOff?, error?}; `mtu` is the budget the
back's tun.mtu gives (the test passes mtu - len as the room), `lbspOff` where the option's data sits.
"""
import json
import os
import random

from scapy.all import (IPv6, TCP, UDP, ICMPv6EchoReply, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop,
                       IPv6ExtHdrRouting, IPv6ExtHdrFragment, PadN, Pad1, HBHOptUnknown, Raw)
from socket import inet_pton, AF_INET6

HERE = os.path.dirname(os.path.abspath(__file__))
rnd = random.Random(20261124)

C6, S6, B6, F6 = '2001:db8:c1::10', '2001:db8:5::80', '2001:db8:b::1', '2001:db8:e1::f'
CSEG = '2001:db8:cc::1'
LBSP = 0x1E
MTU = 1500


def rb(n):
    return bytes(rnd.getrandbits(8) for _ in range(n))


def a6(s):
    return inet_pton(AF_INET6, s)


def opt(t, data):
    return HBHOptUnknown(otype=t, optdata=data)


def is_pad(o):
    return isinstance(o, (Pad1, PadN))


def rebuilt(p):
    """p rebuilt from its bytes with every length and checksum computed by scapy."""
    p = IPv6(bytes(p)).copy()
    p[IPv6].plen = None
    q = p
    while q is not None and q.name != 'NoPayload' and not isinstance(q, Raw):
        if isinstance(q, (TCP, UDP)):
            q.chksum = None
        if isinstance(q, ICMPv6EchoReply):
            q.cksum = None
        if isinstance(q, (IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop)):
            q.len = None
        q = q.payload if q.payload else None
    return IPv6(bytes(p))


def final_destopt(p):
    """The Destination Options header right before the upper layer, and its offset in the packet."""
    raw = bytes(p)
    q, found = p[IPv6].payload, None
    while q is not None and q.name != 'NoPayload':
        if isinstance(q, IPv6ExtHdrDestOpt):
            found = q
        elif isinstance(q, (IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrFragment)):
            found = None
        else:
            break
        q = q.payload
    return found, (len(raw) - len(bytes(found)) if found is not None else -1)


def merged_options(options, client, server):
    """The merge as the docs describe it: existing non-padding options in place, trailing padding
    dropped, pad so the LBSP type sits at 8n+6 (positions counted from the header start)."""
    kept = list(options)
    while kept and is_pad(kept[-1]):
        kept.pop()
    pos = 2 + sum(len(bytes(o)) for o in kept)
    gap = 0
    while (pos + gap) % 8 != 6:
        gap += 1
    pad = [] if gap == 0 else [Pad1()] if gap == 1 else [PadN(optdata=b'\0' * (gap - 2))]
    return kept + pad + [opt(LBSP, a6(client or '::') + a6(server))]


def expected(inp, client, server):
    """Rebuild inp layer by layer with its final Destination Options header merged."""
    dst, _ = final_destopt(inp)
    layers = []
    q = inp[IPv6].payload
    while q is not None and q.name != 'NoPayload':
        if q is dst:
            layers.append(IPv6ExtHdrDestOpt(autopad=0, options=merged_options(dst.options, client, server)))
            layers.append(q.payload.copy())
            break
        x = q.copy()
        x.remove_payload()
        layers.append(x)
        q = q.payload
    i = inp[IPv6]
    p = IPv6(src=i.src, dst=i.dst, fl=i.fl, tc=i.tc, hlim=i.hlim)
    for x in layers:
        p = p / x
    return rebuilt(p)


def check_dissected(inp, out, client, server):
    """scapy reads the stamped packet back: the option is there, the server's options too, checksums hold."""
    assert bytes(rebuilt(out)) == bytes(out), 'checksums or lengths of the expected packet'
    d, doff = final_destopt(out)
    assert d is not None
    hlen = len(bytes(d)) - len(bytes(d.payload))
    assert hlen % 8 == 0 and (d.len + 1) * 8 == hlen, 'Hdr Ext Len in 8-octet units'
    pos, lbsp_off = doff + 2, None
    for o in d.options:
        if isinstance(o, HBHOptUnknown) and o.otype == LBSP:
            assert o.optlen == 32 and o.optdata == a6(client or '::') + a6(server)
            assert (pos - doff) % 8 == 6, 'LBSP option type at 8n+6'
            lbsp_off = pos + 2
        pos += len(bytes(o))
    assert lbsp_off is not None
    old, _ = final_destopt(inp)
    if old is not None:  # the server's options, in order, byte for byte, then ours
        assert [bytes(o) for o in old.options if not is_pad(o)] == [bytes(o) for o in d.options if not is_pad(o)][:-1]
    return lbsp_off


vectors = []


def stamped(desc, p, client=None, mtu=None):
    inp = IPv6(bytes(p))
    out = expected(inp, client, B6)
    v = {'desc': desc, 'input': bytes(inp).hex(), 'server': B6, 'client': client}
    if mtu is not None:
        v['mtu'] = mtu
        assert len(bytes(out)) <= mtu
    v['output'] = bytes(out).hex()
    v['lbspOff'] = check_dissected(inp, out, client, B6)
    vectors.append(v)
    return out


def refused(desc, p, error, mtu=None):
    v = {'desc': desc, 'input': bytes(IPv6(bytes(p))).hex(), 'server': B6, 'client': None, 'error': error}
    if mtu is not None:
        v['mtu'] = mtu
    vectors.append(v)


def reply(*ext, upper=None):
    p = IPv6(src=S6, dst=C6, fl=0x2468a)
    for x in ext:
        p = p / x
    return p / (upper if upper is not None else TCP(sport=443, dport=40000, flags='PA', seq=1, ack=2) / rb(64))


def dopts(*options):
    return IPv6ExtHdrDestOpt(autopad=0, options=list(options))


# The server's own final header, in every shape the merge distinguishes.
stamped('merge: PadN-only header (8 octets), no client segment', reply(dopts(PadN(optdata=b'\0' * 4))))
stamped('merge: unknown option 07 (action 00) + trailing PadN, options end at 6: no pad', reply(dopts(opt(0x07, b'\xaa\xbb'), PadN(optdata=b''))), client=CSEG)
stamped('merge: options end 8-aligned (no trailing padding): PadN(4) before LBSP, +40', reply(dopts(opt(0x07, b'\xaa\xbb\xcc\xdd'))))
stamped('merge: options end at 5 + Pad1 x3: one Pad1 before LBSP', reply(dopts(opt(0x07, b'\xaa'), Pad1(), Pad1(), Pad1())), client=CSEG)
stamped('merge: options end at 7 (Tunnel Encap Limit + empty unknown) + Pad1: PadN(5), +40', reply(dopts(opt(0x04, b'\x04'), opt(0x07, b''), Pad1())))
stamped('merge: 16-octet header, two options ending at 12 + PadN(2): PadN(0) before LBSP', reply(dopts(opt(0x07, b'\x01\x02'), opt(0x3e, b'\x03\x04\x05\x06'), PadN(optdata=b'\0\0'))))
stamped('merge: option padding inside the header is kept (Pad1 between two options)', reply(dopts(opt(0x07, b'\x01'), Pad1(), opt(0x08, b'\x02\x03'), PadN(optdata=b'\0' * 4))))
stamped('merge: seven options already, 16 octets (one more is the eighth, allowed)', reply(dopts(*[opt(0x07 + k, b'') for k in range(7)])))
# Other extension headers before it move with the IPv6 header.
stamped('merge: HBH + final DestOpt(PadN) + TCP: HBH moves with the IPv6 header',
        reply(IPv6ExtHdrHopByHop(options=[PadN(optdata=b'\0' * 4)]), dopts(PadN(optdata=b'\0' * 4))), client=CSEG)
stamped('merge: DestOpt(1) + Routing + DestOpt(2, unknown option) + UDP',
        reply(dopts(PadN(optdata=b'\0' * 4)), IPv6ExtHdrRouting(segleft=0, addresses=[F6]), dopts(opt(0x07, b'\xaa\xbb'), PadN(optdata=b'')),
              upper=UDP(sport=53, dport=5353) / rb(33)))
stamped('merge: ICMPv6 echo reply with a PadN-only header', reply(dopts(PadN(optdata=b'\0' * 4)), upper=ICMPv6EchoReply(id=9, seq=1, data=b'ping')))
# The MTU budget: the merged packet at exactly tun.mtu is stamped, one octet more is refused.
head = len(bytes(reply(dopts(PadN(optdata=b'\0' * 4)), upper=TCP(sport=443, dport=40000, flags='A'))))
fit = MTU - 32 - head  # a PadN-only 8-octet header grows by 32
out = stamped('merge: result exactly tun.mtu (1500)', reply(dopts(PadN(optdata=b'\0' * 4)), upper=TCP(sport=443, dport=40000, flags='A') / rb(fit)), mtu=MTU)
assert len(bytes(out)) == MTU
refused('merge: result one octet over tun.mtu', reply(dopts(PadN(optdata=b'\0' * 4)), upper=TCP(sport=443, dport=40000, flags='A') / rb(fit + 1)), 'NO_ROOM', mtu=MTU)
head = len(bytes(reply(dopts(opt(0x07, b'\xaa\xbb\xcc\xdd')), upper=TCP(sport=443, dport=40000, flags='A'))))
out = stamped('merge (+40): result exactly tun.mtu', reply(dopts(opt(0x07, b'\xaa\xbb\xcc\xdd')), upper=TCP(sport=443, dport=40000, flags='A') / rb(MTU - 40 - head)), mtu=MTU)
assert len(bytes(out)) == MTU
refused('merge (+40): result one octet over tun.mtu', reply(dopts(opt(0x07, b'\xaa\xbb\xcc\xdd')), upper=TCP(sport=443, dport=40000, flags='A') / rb(MTU - 40 - head + 1)), 'NO_ROOM', mtu=MTU)
# The insert path is judged by the same budget (no Destination Options header: +40).
head = len(bytes(reply(upper=TCP(sport=443, dport=40000, flags='A'))))
ins = IPv6(bytes(reply(upper=TCP(sport=443, dport=40000, flags='A') / rb(MTU - 40 - head))))
exp = rebuilt(IPv6(src=S6, dst=C6, fl=ins.fl, hlim=ins.hlim) / dopts(PadN(optdata=b'\0\0'), opt(LBSP, a6('::') + a6(B6))) / ins[IPv6].payload.copy())
assert len(bytes(exp)) == MTU
vectors.append({'desc': 'insert: result exactly tun.mtu', 'input': bytes(ins).hex(), 'server': B6, 'client': None, 'mtu': MTU, 'output': bytes(exp).hex(),
                'lbspOff': check_dissected(ins, exp, None, B6)})
refused('insert: result one octet over tun.mtu', reply(upper=TCP(sport=443, dport=40000, flags='A') / rb(MTU - 40 - head + 1)), 'NO_ROOM', mtu=MTU)
# What stays refused.
refused('refuse: final header holds an option of the LBSP type with another length', reply(dopts(opt(LBSP, a6(C6)), PadN(optdata=b'\0\0'))), 'WRONG_LENGTH_OPTION')
refused('refuse: eight options already (a ninth is dropped by Linux)', reply(dopts(*[opt(0x07 + k, b'') for k in range(8)], PadN(optdata=b'\0' * 4))), 'OPTIONS_FULL')
refused('refuse: fragment with a final DestOpt', reply(IPv6ExtHdrFragment(id=77, m=0, offset=0), dopts(PadN(optdata=b'\0' * 4)), upper=UDP(sport=53, dport=5353) / rb(20)), 'FRAGMENT')
refused('refuse: DestOpt before ESP (no upper layer)', IPv6(src=S6, dst=C6, nh=60) / Raw(bytes([50, 0, 1, 4, 0, 0, 0, 0]) + rb(40)), 'NO_UPPER_LAYER')

with open(os.path.join(HERE, 'lbsp-merge.json'), 'w') as f:
    json.dump(vectors, f, indent=1)
    f.write('\n')
print('lbsp-merge', len(vectors))
