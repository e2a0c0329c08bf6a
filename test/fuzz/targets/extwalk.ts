// Fuzz target: the IPv6 extension-header walk. Input: [control][first next header][chain bytes];
// the target puts a valid IPv6 header (client -> service) in front, so every mutation lands in the
// chain. Control bit 0 makes Payload Length claim (control >> 1) bytes more than are there;
// bit 1 turns LBSP detection off. Invariants as in the parse target, plus: an accepted chain is
// at most 16 headers and ends where the plain walk ends.
import { parsePacket, ParseError } from '../../../shared/packet/parse.js';
import { PacketInfo } from '../../../shared/packet/packet-info.js';
import { MAX_EXT_HEADERS } from '../../../shared/packet/constants.js';
import { PoisonSlab, PACKET_OFF, MAX_PACKET, fail } from '../harness/slab.js';
import { checkParse, referenceWalk6, sameInfo } from '../harness/invariants.js';

const A = new PoisonSlab(0xa5);
const B = new PoisonSlab(0x5a);
const ia = new PacketInfo();
const ib = new PacketInfo();
const pkt = new Uint8Array(MAX_PACKET);
// 2001:db8:c1::10 -> 2001:db8:5::80
const SRC = [0x20, 0x01, 0x0d, 0xb8, 0, 0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const DST = [0x20, 0x01, 0x0d, 0xb8, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80];

export function fuzz(data: Buffer): void {
  if (data.length < 2) return;
  const ctrl = data[0];
  const chain = Math.min(data.length - 2, MAX_PACKET - 40);
  const claimed = chain + (ctrl & 1 ? ctrl >> 1 : 0);
  pkt[0] = 0x60; pkt[1] = 0; pkt[2] = 0; pkt[3] = 0;
  pkt[4] = claimed >> 8; pkt[5] = claimed & 0xff;
  pkt[6] = data[1];
  pkt[7] = 64;
  pkt.set(SRC, 8);
  pkt.set(DST, 24);
  pkt.set(data.subarray(2, 2 + chain), 40);
  const len = A.load(pkt, 0, 40 + chain);
  B.load(pkt, 0, 40 + chain);
  const lbspType = ctrl & 2 ? -1 : 0x1e;
  const va = parsePacket(A.buf, PACKET_OFF, len, ia, lbspType);
  const vb = parsePacket(B.buf, PACKET_OFF, len, ib, lbspType);
  if (va !== vb) fail(`verdict depends on bytes outside the packet: ${va} vs ${vb}`);
  const diff = sameInfo(ia, ib);
  if (diff !== null) fail(`PacketInfo.${diff} depends on bytes outside the packet`);
  A.checkWrites('parsePacket', PACKET_OFF);
  checkParse(va, ia, A.buf, PACKET_OFF, len, lbspType);
  if (claimed !== chain && va === ParseError.OK) fail('accepted a Payload Length beyond the packet');
  if (va !== ParseError.OK) return;
  const ref = referenceWalk6(A.buf, PACKET_OFF, ia.totalLen);
  if (ref === null) fail('accepted a header chain the plain walk finds broken');
  if (ref.headers > MAX_EXT_HEADERS) fail(`accepted ${ref.headers} extension headers`);
  if (ia.extHeaders !== ref.headers) fail(`extHeaders ${ia.extHeaders}, plain walk counts ${ref.headers}`);
  if (ref.proto !== ia.proto || ref.hdrLen !== ia.hdrLen) fail(`walk stopped at proto ${ia.proto} / ${ia.hdrLen} bytes, plain walk at ${ref.proto} / ${ref.hdrLen}`);
}
