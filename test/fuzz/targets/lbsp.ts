// Fuzz target: reading the LBSP option and the back's stamping (insertOrFillServerSegment).
// Input: [control][packet]; control bit 0: a client segment is known (else null), bit 1: LBSP type
// 0x1E, else the control byte itself (at least 2, as the configs require). Invariants: reads copy exactly the option's bytes; stamping
// writes only inside [new start, packet end) of the slot (the 40-byte header goes into the
// headroom), or nothing when it refuses; a stamped packet parses, carries the LBSP option with
// our server segment, the same upper-layer protocol and the same upper-layer bytes; results do not
// depend on bytes outside the packet.
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

function get32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

export function fuzz(data: Buffer): void {
  if (data.length < 1) return;
  const ctrl = data[0];
  const type = ctrl & 2 ? 0x1e : Math.max(2, ctrl); // the configs refuse 0 (Pad1) and 1 (PadN)
  const client = ctrl & 1 ? CLIENT : null;
  const len = A.load(data, 1, data.length);
  B.load(data, 1, data.length);
  if (parsePacket(A.buf, PACKET_OFF, len, info, type) !== ParseError.OK) return;
  parsePacket(B.buf, PACKET_OFF, len, infoB, type);
  before.set(A.bytes(PACKET_OFF, len));
  const l4Off = info.l4Off;
  const l4Len = info.l4Len;
  const proto = info.proto;
  const hadLbsp = info.lbspStatus === 1;
  const oldClient = new Uint32Array(4);

  if (readLbspServer(A.buf, PACKET_OFF, info, w)) {
    for (let i = 0; i < 4; i++) if (w[i] !== get32(A.buf, PACKET_OFF + info.lbspOff + 16 + 4 * i)) fail('readLbspServer copied the wrong bytes');
  } else if (hadLbsp) fail('readLbspServer false with a valid option');
  if (readLbspClient(A.buf, PACKET_OFF, info, oldClient)) {
    for (let i = 0; i < 4; i++) if (oldClient[i] !== get32(A.buf, PACKET_OFF + info.lbspOff + 4 * i)) fail('readLbspClient copied the wrong bytes');
  } else if (hadLbsp) fail('readLbspClient false with a valid option');

  const r = insertOrFillServerSegment(A.buf, PACKET_OFF, len, info, type, SERVER, client);
  const rb = insertOrFillServerSegment(B.buf, PACKET_OFF, len, infoB, type, SERVER, client);
  if (r !== rb) fail(`result depends on bytes outside the packet: ${r} vs ${rb}`);
  if (r < 0) {
    if (!(Object.values(LbspError) as number[]).includes(r)) fail(`unknown error ${r}`);
    A.checkWrites('refused stamping', PACKET_OFF);
    if (!sameBytes(A.bytes(PACKET_OFF, len), before.subarray(0, len))) fail(`refused stamping (${r}) but modified the packet`);
    return;
  }
  const inserted = r !== PACKET_OFF;
  if (inserted && r !== PACKET_OFF - LBSP_HDR_LEN) fail(`stamping returned offset ${r - PACKET_OFF} (expected 0 or -40)`);
  if (hadLbsp && inserted) fail('inserted a second LBSP option');
  const newLen = len + (inserted ? LBSP_HDR_LEN : 0);
  checkInSlot('stamped packet', r, newLen);
  A.checkWrites('stamping', r);
  if (!sameBytes(A.bytes(r, newLen), B.bytes(rb, newLen))) fail('stamped bytes depend on bytes outside the packet');
  const v = parsePacket(A.buf, r, newLen, re, type);
  if (v !== ParseError.OK) fail(`stamped packet does not parse (verdict ${v})`);
  checkParse(v, re, A.buf, r, newLen, type);
  if (re.lbspStatus !== 1) fail('stamped packet has no LBSP option');
  if (re.proto !== proto) fail(`upper-layer protocol changed ${proto} -> ${re.proto}`);
  if (re.totalLen !== info.totalLen) fail(`info.totalLen ${info.totalLen} not updated to ${re.totalLen}`);
  if (re.lbspOff !== info.lbspOff || re.l4Off !== info.l4Off) fail('info not updated to the stamped packet');
  for (let i = 0; i < 4; i++) {
    if (get32(A.buf, r + re.lbspOff + 16 + 4 * i) !== SERVER[i]) fail('server segment is not ours');
    const c = get32(A.buf, r + re.lbspOff + 4 * i);
    const want = inserted ? (client === null ? 0 : client[i]) : oldClient[i];
    if (c !== want) fail('client segment wrong after stamping');
  }
  if (l4Off >= 0) {
    if (re.l4Len !== l4Len) fail(`upper-layer length changed ${l4Len} -> ${re.l4Len}`);
    if (!sameBytes(A.bytes(r + re.l4Off, l4Len), before.subarray(l4Off, l4Off + l4Len))) fail('upper-layer bytes changed');
  }
}
