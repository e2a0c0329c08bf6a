"""The project's inner-flow hash re-implemented from its definition (shared/packet/encap.ts
innerFlowHash: murmur3 steps over the inner addresses, ports unless a fragment, protocol and IPv6
flow label; shared/packet/udp-encap.ts udpSourcePort: 49152 | 14 bits of it), for the vector
scripts to check the TypeScript rather than copy it."""

M32 = 0xffffffff


def rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & M32


def mix32(h, k):
    k = (k * 0xcc9e2d51) & M32
    k = rotl(k, 15)
    k = (k * 0x1b873593) & M32
    h ^= k
    h = rotl(h, 13)
    return (h * 5 + 0xe6546b64) & M32


def fmix32(h):
    h ^= h >> 16
    h = (h * 0x85ebca6b) & M32
    h ^= h >> 13
    h = (h * 0xc2b2ae35) & M32
    h ^= h >> 16
    return h


def words(raw):
    return [int.from_bytes(raw[i:i + 4], 'big') for i in range(0, len(raw), 4)]


def flow_hash(inner):
    """innerFlowHash of an unfragmented inner packet (RFC 6438 label, 20 bits, never 0)."""
    raw = bytes(inner)
    if raw[0] >> 4 == 4:
        src, dst, proto, fl, l4 = words(raw[12:16]), words(raw[16:20]), raw[9], 0, (raw[0] & 15) * 4
    else:
        src, dst, proto, l4 = words(raw[8:24]), words(raw[24:40]), raw[6], 40
        fl = int.from_bytes(raw[1:4], 'big') & 0xfffff
    h = 0x9747b28c
    for a, b in zip(src, dst):
        h = mix32(h, a)
        h = mix32(h, b)
    ports = int.from_bytes(raw[l4:l4 + 4], 'big') if proto in (6, 17) else 0
    h = mix32(h, ports)
    h = fmix32(mix32(h, (proto << 20) | fl))
    lab = (h ^ (h >> 20)) & 0xfffff
    return lab or 1


def sport(inner):
    h = flow_hash(inner)
    return 0xc000 | ((h ^ (h >> 14)) & 0x3fff)


