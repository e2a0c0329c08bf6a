// Packet codec micro-benchmark: ns per parse / translate / encap over a preallocated slab.
// Prints numbers only (no assertions). Run: npx tsc -p tsconfig.json && node dist/bench/codec-bench.js
import { PacketInfo } from '../shared/packet/packet-info.js';
import { parsePacket } from '../shared/packet/parse.js';
import { addrDelta } from '../shared/packet/checksum.js';
import { rewriteDst } from '../shared/packet/translate.js';
import { encapsulate } from '../shared/packet/encap.js';
import { LBSP_DEFAULT_TYPE } from '../shared/packet/constants.js';

const SLOT = 2048;
const HEADROOM = 128;
const N = 256; // packets in the slab

function makeSlab(v6: boolean, withLbsp: boolean): { buf: Uint8Array; len: number } {
  const buf = new Uint8Array(SLOT * N);
  const ext = withLbsp ? 40 : 0;
  const len = (v6 ? 40 : 20) + ext + 20 + 64;
  for (let i = 0; i < N; i++) {
    const o = i * SLOT + HEADROOM;
    if (v6) {
      buf[o] = 0x60;
      buf[o + 4] = (len - 40) >> 8;
      buf[o + 5] = (len - 40) & 0xff;
      buf[o + 6] = withLbsp ? 60 : 6;
      buf[o + 7] = 64;
      buf[o + 23] = i; // source varies
      buf[o + 24] = 0x20; buf[o + 25] = 0x01; buf[o + 26] = 0x0d; buf[o + 27] = 0xb8; buf[o + 39] = 0x80;
      if (withLbsp) {
        const d = o + 40;
        buf[d] = 6; buf[d + 1] = 4; buf[d + 2] = 1; buf[d + 3] = 2; buf[d + 6] = LBSP_DEFAULT_TYPE; buf[d + 7] = 32;
      }
    } else {
      buf[o] = 0x45;
      buf[o + 2] = len >> 8;
      buf[o + 3] = len & 0xff;
      buf[o + 8] = 64;
      buf[o + 9] = 6;
      buf[o + 15] = i;
      buf[o + 16] = 192; buf[o + 18] = 2; buf[o + 19] = 80;
    }
    const t = o + (v6 ? 40 : 20) + ext;
    buf[t + 12] = 0x50;
    buf[t + 13] = 0x10;
  }
  return { buf, len };
}

function bench(name: string, iters: number, fn: () => void): void {
  for (let i = 0; i < 3; i++) fn(); // warm-up rounds
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < iters; r++) fn();
  const ns = Number(process.hrtime.bigint() - t0) / (iters * N);
  console.log(`${name.padEnd(42)} ${ns.toFixed(1).padStart(7)} ns/packet`);
}

const info = new PacketInfo();
const newDst6 = new Uint32Array([0x20010db8, 0x000b0000, 0, 1]);
const newDst4 = new Uint32Array([0xc6336401, 0, 0, 0]);
const outerSrc = new Uint32Array([0x20010db8, 0x00050000, 0, 0x80]);
const ITERS = 4000;

for (const [label, v6, lbsp] of [['IPv6 TCP', true, false], ['IPv6 DestOpt(LBSP)+TCP', true, true], ['IPv4 TCP', false, false]] as const) {
  const { buf, len } = makeSlab(v6, lbsp);
  bench(`parse ${label}`, ITERS, () => {
    for (let i = 0; i < N; i++) parsePacket(buf, i * SLOT + HEADROOM, len, info, LBSP_DEFAULT_TYPE);
  });
  parsePacket(buf, HEADROOM, len, info, LBSP_DEFAULT_TYPE);
  const nd = v6 ? newDst6 : newDst4;
  const d = addrDelta(info.dst, nd, v6 ? 4 : 1);
  const back = new Uint32Array(info.dst);
  const dBack = addrDelta(nd, back, v6 ? 4 : 1);
  let flip = false;
  bench(`parse + translate ${label}`, ITERS, () => {
    flip = !flip;
    for (let i = 0; i < N; i++) {
      const o = i * SLOT + HEADROOM;
      parsePacket(buf, o, len, info, LBSP_DEFAULT_TYPE);
      rewriteDst(buf, o, info, flip ? nd : back, flip ? d : dBack, false);
    }
  });
  let id = 0;
  bench(`parse + encap ${label} in IPv6`, ITERS, () => {
    for (let i = 0; i < N; i++) {
      const o = i * SLOT + HEADROOM;
      parsePacket(buf, o, len, info, LBSP_DEFAULT_TYPE);
      encapsulate(buf, o, info, 6, outerSrc, newDst6, 64, id++ & 0xffff);
    }
  });
  bench(`parse + encap ${label} in IPv4`, ITERS, () => {
    for (let i = 0; i < N; i++) {
      const o = i * SLOT + HEADROOM;
      parsePacket(buf, o, len, info, LBSP_DEFAULT_TYPE);
      encapsulate(buf, o, info, 4, newDst4, newDst4, 64, id++ & 0xffff);
    }
  });
}
