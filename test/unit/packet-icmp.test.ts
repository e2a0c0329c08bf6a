import { describe, it, expect } from 'vitest';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket } from '../../shared/packet/parse.js';
import { buildPacketTooBig6, buildTimeExceeded6, buildFragNeeded4, buildTimeExceeded4, mayGenerateIcmpError, parseIcmpError, IcmpErrorInfo } from '../../shared/packet/icmp.js';
import { loadVectors, slab, hexOf, words } from '../vectors/load.js';

interface BuildVector { desc: string; kind: 'ptb6' | 'te6' | 'fn4' | 'te4'; input: string; src: string; mtu?: number; ipId?: number; output: string }
interface MayVector { desc: string; input: string; result: boolean }
interface RecvVector { desc: string; input: string; result: boolean; type?: number; code?: number; mtu?: number; innerOff?: number; innerVersion?: number; innerProto?: number; innerSrc?: string; innerDst?: string }

const v = loadVectors<{ build: BuildVector[]; mayGenerate: MayVector[]; received: RecvVector[] }>('icmp.json');

describe('ICMP errors we originate, against scapy', () => {
  it.each(v.build.map((x) => [x.desc, x] as const))('%s', (_d, x) => {
    const [buf, off, len] = slab(x.input);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(0);
    const out = new Uint8Array(2048).fill(0x5a);
    const o = 100;
    const src = words(x.src);
    let n = 0;
    if (x.kind === 'ptb6') n = buildPacketTooBig6(out, o, buf, off, info, src, x.mtu!);
    if (x.kind === 'te6') n = buildTimeExceeded6(out, o, buf, off, info, src);
    if (x.kind === 'fn4') n = buildFragNeeded4(out, o, buf, off, info, src, x.mtu!, x.ipId!);
    if (x.kind === 'te4') n = buildTimeExceeded4(out, o, buf, off, info, src, x.ipId!);
    expect(hexOf(out, o, n)).toBe(x.output);
    expect(n).toBeLessThanOrEqual(x.kind.endsWith('6') ? 1280 : 576);
    expect(out[o - 1]).toBe(0x5a);
    expect(out[o + n]).toBe(0x5a);
  });
});

describe('mayGenerateIcmpError', () => {
  it.each(v.mayGenerate.map((x) => [x.desc, x] as const))('%s', (_d, x) => {
    const [buf, off, len] = slab(x.input);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(0);
    expect(mayGenerateIcmpError(info, buf, off)).toBe(x.result);
  });
});

describe('parseIcmpError on errors received', () => {
  it.each(v.received.map((x) => [x.desc, x] as const))('%s', (_d, x) => {
    const [buf, off, len] = slab(x.input);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(0);
    const e = new IcmpErrorInfo();
    expect(parseIcmpError(buf, off, info, e)).toBe(x.result);
    if (!x.result) return;
    expect(e.type).toBe(x.type);
    expect(e.code).toBe(x.code);
    expect(e.mtu).toBe(x.mtu);
    expect(e.innerOff - off).toBe(x.innerOff);
    expect(e.innerVersion).toBe(x.innerVersion);
    expect(e.innerProto).toBe(x.innerProto);
    expect(Array.from(e.innerSrc)).toEqual(Array.from(words(x.innerSrc!)));
    expect(Array.from(e.innerDst)).toEqual(Array.from(words(x.innerDst!)));
  });
});
