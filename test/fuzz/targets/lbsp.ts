// Fuzz target: reading the LBSP option and the back's stamping (insertOrFillServerSegment).
// Input: [control][packet]; control bit 0: a client segment is known (else null), bit 1: LBSP type
// 0x1E (then bits 2-7, when not 0, are the room the packet may grow by: the MTU budget), else the
// control byte itself (at least 2, as the configs require) and no room limit. Invariants: reads copy
// exactly the option's bytes; stamping writes only inside [new start, packet end) of the slot (the
// header or the merge's growth goes into the headroom), or nothing when it refuses; it grows by 0
// (fill), 40 (insert) or 32/40 (merge into the final Destination Options header), never past the
// room, and refuses for room only when it would have grown past it; a stamped packet parses,
// carries the LBSP option with our server segment, the same upper-layer protocol and the same
// upper-layer bytes; a merge keeps every option of the header byte for byte at its place, the
// headers before it and the header count; results do not depend on bytes outside the packet.
import { parsePacket, ParseError } from '../../../shared/packet/parse.js';
import { PacketInfo } from '../../../shared/packet/packet-info.js';
import { insertOrFillServerSegment, readLbspClient, readLbspServer, LbspError } from '../../../shared/packet/lbsp.js';
import { LBSP_HDR_LEN } from '../../../shared/packet/constants.js';
import { PoisonSlab, PACKET_OFF, fail, sameBytes, checkInSlot } from '../harness/slab.js';
import { checkParse } from '../harness/invariants.js';

const A = new PoisonSlab(0xa5);
const B = new PoisonSlab(0x5a);
const info = new PacketInfo();
const infoB = new PacketInfo();
const re = new PacketInfo();
const SERVER = Uint32Array.of(0x20010db8, 0x000b0000, 0, 1);
const CLIENT = Uint32Array.of(0x20010db8, 0x00c10000, 0, 0x10);
const w = new Uint32Array(4);
const before = new Uint8Array(2048);
const UNLIMITED = 0xffff;

function get32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

export function fuzz(data: Buffer): void {
  if (data.length < 1) return;
  const ctrl = data[0];
  const type = ctrl & 2 ? 0x1e : Math.max(2, ctrl); // the configs refuse 0 (Pad1) and 1 (PadN)
  const client = ctrl & 1 ? CLIENT : null;
  const room = ctrl & 2 && ctrl >> 2 !== 0 ? ctrl >> 2 : UNLIMITED;
  const len = A.load(data, 1, data.length);
  B.load(data, 1, data.length);
  if (parsePacket(A.buf, PACKET_OFF, len, info, type) !== ParseError.OK) return;
  parsePacket(B.buf, PACKET_OFF, len, infoB, type);
  before.set(A.bytes(PACKET_OFF, len));
  const l4Off = info.l4Off;
  const l4Len = info.l4Len;
  const proto = info.proto;
  const hadLbsp = info.lbspStatus === 1;
  const oldDestOpts = info.destOptsOff;
  const oldDestOptsLen = info.destOptsLen;
  const oldHeaders = info.extHeaders;
  const oldTotal = info.totalLen;
  const oldClient = new Uint32Array(4);

  if (readLbspServer(A.buf, PACKET_OFF, info, w)) {
    for (let i = 0; i < 4; i++) if (w[i] !== get32(A.buf, PACKET_OFF + info.lbspOff + 16 + 4 * i)) fail('readLbspServer copied the wrong bytes');
  } else if (hadLbsp) fail('readLbspServer false with a valid option');
  if (readLbspClient(A.buf, PACKET_OFF, info, oldClient)) {
    for (let i = 0; i < 4; i++) if (oldClient[i] !== get32(A.buf, PACKET_OFF + info.lbspOff + 4 * i)) fail('readLbspClient copied the wrong bytes');
  } else if (hadLbsp) fail('readLbspClient false with a valid option');

  const r = insertOrFillServerSegment(A.buf, PACKET_OFF, len, info, type, SERVER, client, room);
  const rb = insertOrFillServerSegment(B.buf, PACKET_OFF, len, infoB, type, SERVER, client, room);
  if (r !== rb) fail(`result depends on bytes outside the packet: ${r} vs ${rb}`);
  if (r < 0) {
    if (!(Object.values(LbspError) as number[]).includes(r)) fail(`unknown error ${r}`);
    A.checkWrites('refused stamping', PACKET_OFF);
    if (!sameBytes(A.bytes(PACKET_OFF, len), before.subarray(0, len))) fail(`refused stamping (${r}) but modified the packet`);
    if (r === LbspError.NO_ROOM) {
      // refused for room only when it really grows past it: without the limit it stamps, larger
      B.load(data, 1, data.length);
      parsePacket(B.buf, PACKET_OFF, len, infoB, type);
      const free = insertOrFillServerSegment(B.buf, PACKET_OFF, len, infoB, type, SERVER, client, UNLIMITED);
      if (free < 0 || PACKET_OFF - free <= room) fail(`NO_ROOM with room ${room}, but unlimited it gives ${free - PACKET_OFF}`);
    }
    return;
  }
  const grow = PACKET_OFF - r;
  const inserted = grow > 0 && oldDestOpts < 0;
  const merged = grow > 0 && oldDestOpts >= 0;
  if (hadLbsp && grow !== 0) fail('added a second LBSP option');
  if (!hadLbsp && grow === 0) fail('stamped without growing, but there was no option to fill');
  if (inserted && grow !== LBSP_HDR_LEN) fail(`insert grew by ${grow} (expected 40)`);
  if (merged && grow !== 32 && grow !== 40) fail(`merge grew by ${grow} (expected 32 or 40)`);
  if (grow > room) fail(`grew by ${grow} past the room ${room}`);
  const newLen = len + grow;
  checkInSlot('stamped packet', r, newLen);
  A.checkWrites('stamping', r);
  if (!sameBytes(A.bytes(r, newLen), B.bytes(rb, newLen))) fail('stamped bytes depend on bytes outside the packet');
  const v = parsePacket(A.buf, r, newLen, re, type);
  if (v !== ParseError.OK) fail(`stamped packet does not parse (verdict ${v})`);
  checkParse(v, re, A.buf, r, newLen, type);
  if (re.lbspStatus !== 1) fail('stamped packet has no LBSP option');
  if (re.proto !== proto) fail(`upper-layer protocol changed ${proto} -> ${re.proto}`);
  if (re.totalLen !== info.totalLen) fail(`info.totalLen ${info.totalLen} not updated to ${re.totalLen}`);
  if (re.totalLen !== oldTotal + grow) fail(`total length ${oldTotal} -> ${re.totalLen}, grown by ${grow}`);
  if (re.lbspOff !== info.lbspOff || re.l4Off !== info.l4Off || re.destOptsLen !== info.destOptsLen) fail('info not updated to the stamped packet');
  if (re.extHeaders !== oldHeaders + (inserted ? 1 : 0)) fail(`extension headers ${oldHeaders} -> ${re.extHeaders}`);
  if (merged && re.destOptsOff !== oldDestOpts) fail(`merge moved the header ${oldDestOpts} -> ${re.destOptsOff}`);
  if (merged) checkMerge(A.buf, r, oldDestOpts, oldDestOptsLen);
  for (let i = 0; i < 4; i++) {
    if (get32(A.buf, r + re.lbspOff + 16 + 4 * i) !== SERVER[i]) fail('server segment is not ours');
    const c = get32(A.buf, r + re.lbspOff + 4 * i);
    const want = grow > 0 ? (client === null ? 0 : client[i]) : oldClient[i];
    if (c !== want) fail('client segment wrong after stamping');
  }
  if (l4Off >= 0) {
    if (re.l4Len !== l4Len) fail(`upper-layer length changed ${l4Len} -> ${re.l4Len}`);
    if (!sameBytes(A.bytes(r + re.l4Off, l4Len), before.subarray(l4Off, l4Off + l4Len))) fail('upper-layer bytes changed');
  }
}

/**
 * After a merge: the IPv6 header and every header before the final Destination Options header are
 * as they were (but Payload Length), that header sits at the same offset with the same Next Header,
 * and every non-padding option it had is still there, byte for byte, at the same place in it.
 */
function checkMerge(buf: Uint8Array, r: number, dOff: number, dLen: number): void {
  for (let i = 0; i < dOff + 1; i++) {
    if (i !== 4 && i !== 5 && buf[r + i] !== before[i]) fail(`merge changed byte ${i} before the option list`);
  }
  let p = dOff + 2;
  while (p < dOff + dLen) {
    const t = before[p];
    if (t === 0) {
      p++;
      continue;
    }
    const n = 2 + before[p + 1];
    if (t !== 1 && !sameBytes(buf.subarray(r + p, r + p + n), before.subarray(p, p + n))) fail(`merge moved or changed the option at ${p - dOff} of the header`);
    p += n;
  }
}
