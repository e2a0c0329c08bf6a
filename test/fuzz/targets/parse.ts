// Fuzz target: parsePacket over arbitrary bytes, with LBSP detection on (0x1E or another type)
// and off. Input: [control byte][packet]. Invariants: never throws, writes nothing, reads nothing
// outside the packet (same result with two poison values around it), every offset it reports lies
// inside the packet and agrees with the bytes, and the IPv6 header walk stops where an independent
// plain walk stops.
import { parsePacket, ParseError } from '../../../shared/packet/parse.js';
import { PacketInfo } from '../../../shared/packet/packet-info.js';
import { PoisonSlab, PACKET_OFF, fail, sameBytes } from '../harness/slab.js';
import { checkParse, referenceWalk6, sameInfo } from '../harness/invariants.js';

const A = new PoisonSlab(0xa5);
const B = new PoisonSlab(0x5a);
const ia = new PacketInfo();
const ib = new PacketInfo();

export function lbspTypeOf(ctrl: number): number {
  if (ctrl & 1) return -1;
  return ctrl & 2 ? ctrl : 0x1e;
}

export function fuzz(data: Buffer): void {
  if (data.length < 1) return;
  const lbspType = lbspTypeOf(data[0]);
  const len = A.load(data, 1, data.length);
  B.load(data, 1, data.length);
  const va = parsePacket(A.buf, PACKET_OFF, len, ia, lbspType);
  const vb = parsePacket(B.buf, PACKET_OFF, len, ib, lbspType);
  if (va !== vb) fail(`verdict depends on bytes outside the packet: ${va} vs ${vb}`);
  const diff = sameInfo(ia, ib);
  if (diff !== null) fail(`PacketInfo.${diff} depends on bytes outside the packet`);
  A.checkWrites('parsePacket', PACKET_OFF);
  if (!sameBytes(A.bytes(PACKET_OFF, len), data.subarray(1, 1 + len))) fail('parsePacket modified the packet');
  checkParse(va, ia, A.buf, PACKET_OFF, len, lbspType);
  if (va === ParseError.OK && ia.version === 6) {
    const ref = referenceWalk6(A.buf, PACKET_OFF, ia.totalLen);
    if (ref === null) fail('parsePacket accepted a header chain the plain walk finds broken');
    if (ref.proto !== ia.proto || ref.hdrLen !== ia.hdrLen) fail(`walk stopped at proto ${ia.proto} / ${ia.hdrLen} bytes, plain walk at ${ref.proto} / ${ref.hdrLen}`);
    if (ia.extHeaders !== ref.headers) fail(`extHeaders ${ia.extHeaders}, plain walk counts ${ref.headers}`);
  }
}
