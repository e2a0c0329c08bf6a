// Every murmur3-style hash in the tree comes from shared/packet/hash32.ts. The values below were
// taken from the code before the flow table, the client-segment cache and the outer flow label
// stopped carrying their own copies of the mixing: they pin that folding them changed no result
// (Maglev picks and outer flow labels are visible outside the process; the table slots decide
// which flows collide).
import { describe, expect, it } from 'vitest';
import { fmix32, hash1, hash2, hash4, hash5, hashString, KEY_SEED } from '../../shared/packet/hash32.js';
import { innerFlowHash } from '../../shared/packet/encap.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { FlowTable } from '../../front/flow-table.js';
import { ClientSegments } from '../../back/client-segments.js';

const a6 = new Uint32Array([0x20010db8, 0, 0, 1]), b6 = new Uint32Array([0x20010db8, 5, 0, 0x80]);
const a4 = new Uint32Array([0xc0000201, 0, 0, 0]), b4 = new Uint32Array([0xcb007150, 0, 0, 0]);

describe('hash32 pinned values', () => {
  it('finaliser and word hashes', () => {
    expect([0, 1, 0xdeadbeef, 0xffffffff].map(fmix32)).toEqual([0, 1364076727, 233162409, 2180083513]);
    expect([hash1(KEY_SEED, 0x12345), hash1(0, 0), hash1(KEY_SEED, 0xc0000201)]).toEqual([444444171, 593689054, 1375358960]);
    expect([hash2(KEY_SEED, 0xc0000201, 0x12345), hash2(7, 0xffffffff, 0)]).toEqual([1796692895, 3017404637]);
    expect([hash4(KEY_SEED, 0x20010db8, 0, 0, 1), hash4(1, 0xffffffff, 0x80000000, 3, 4)]).toEqual([3458411039, 539161923]);
    expect([hash5(KEY_SEED, 0x20010db8, 0, 0, 1, 0xabcde), hash5(-1, 1, 2, 3, 4, 5)]).toEqual([2950535547, 2734464386]);
    expect([hashString(KEY_SEED, 'b1'), hashString(KEY_SEED, 'web-3'), hashString(0, '')]).toEqual([1950877547, 1388276083, 0]);
  });

  it('RFC 6438 outer flow label', () => {
    const info = new PacketInfo();
    const got: number[] = [];
    info.version = 6; info.proto = 6; info.l4Off = 40; info.src.set(a6); info.dst.set(b6);
    info.srcPort = 40000; info.dstPort = 443; info.flowLabel = 0x12345;
    got.push(innerFlowHash(info));
    info.isFragment = true; // ports no longer count
    got.push(innerFlowHash(info));
    info.reset(); info.version = 4; info.proto = 17; info.l4Off = 20; info.src.set(a4); info.dst.set(b4);
    info.srcPort = 5353; info.dstPort = 53;
    got.push(innerFlowHash(info));
    info.proto = 1; // not TCP/UDP: ports no longer count
    got.push(innerFlowHash(info));
    expect(got).toEqual([982757, 457176, 413487, 47974]);
  });

  it('flow table key hash', () => {
    const ft = new FlowTable(1024, 0x5eed);
    // keyHash is private: it is what this pin is about, and no public result shows all 32 bits
    const keyHash = () => (ft as unknown as { keyHash: number }).keyHash;
    const got: number[] = [];
    ft.setFlowKey(6, 6, a6, b6, 40000, 443); got.push(keyHash());
    ft.setFlowKey(4, 17, a4, b4, 5353, 53); got.push(keyHash());
    ft.setFragmentKey(6, 17, a6, b6, 0xdeadbeef); got.push(keyHash());
    expect(got).toEqual([560448560, 3632567298, 3720621889]);
  });

  it('client segment cache slot', () => {
    // slotOf is private: the slot is the hash's only result
    type Slots = { slotOf(proto: number, service: Uint32Array, client: Uint32Array, servicePort: number, clientPort: number): number };
    const small = new ClientSegments(8192, 0x5eed) as unknown as Slots;
    expect([small.slotOf(6, b6, a6, 443, 40000), small.slotOf(17, b4, a4, 53, 5353), small.slotOf(6, b6, a6, 443, 40001)])
      .toEqual([2901, 3004, 4319]);
    const prime = new ClientSegments(65521, 0xffffffff) as unknown as Slots;
    expect([prime.slotOf(6, b6, a6, 443, 40000), prime.slotOf(17, b4, a4, 53, 5353)]).toEqual([7035, 50464]);
  });
});
