// Fuzz target: decapsulate (4in4, 6in6, 4in6, 6in4) and, with control bit 1, decapsulateUdp (the
// same over UDP). Input: [control][packet]; control bit 0 turns LBSP detection off in the outer
// parse. Invariants: the inner packet it reports lies inside the outer payload (for UDP: inside the
// UDP payload its length field names, the UDP checksum right) with the version the outer protocol
// (for UDP: the first nibble, 4 or 6) names; the only bytes it may change are
// the inner ECN bits (and the inner IPv4 header checksum, which must stay valid); a refused packet
// is untouched; results do not depend on bytes outside the packet.
import { parsePacket, ParseError } from '../../../shared/packet/parse.js';
import { PacketInfo } from '../../../shared/packet/packet-info.js';
import { decapsulate, DecapResult, DecapVerdict } from '../../../shared/packet/encap.js';
import { decapsulateUdp } from '../../../shared/packet/udp-encap.js';
import { fold, ipv4HeaderChecksumValid, pseudoHeaderSum, sum16 } from '../../../shared/packet/checksum.js';
import { Proto } from '../../../shared/packet/constants.js';
import { PoisonSlab, PACKET_OFF, fail, sameBytes } from '../harness/slab.js';

const A = new PoisonSlab(0xa5);
const B = new PoisonSlab(0x5a);
const info = new PacketInfo();
const infoB = new PacketInfo();
const ra = new DecapResult();
const rb = new DecapResult();
const before = new Uint8Array(2048);
const VERDICTS = new Set<number>(Object.values(DecapVerdict));

export function fuzz(data: Buffer): void {
  if (data.length < 1) return;
  const lbspType = data[0] & 1 ? -1 : 0x1e;
  const len = A.load(data, 1, data.length);
  B.load(data, 1, data.length);
  if (parsePacket(A.buf, PACKET_OFF, len, info, lbspType) !== ParseError.OK) return;
  parsePacket(B.buf, PACKET_OFF, len, infoB, lbspType);
  before.set(A.bytes(PACKET_OFF, len));
  const udp = (data[0] & 2) !== 0;
  const va = udp ? decapsulateUdp(A.buf, PACKET_OFF, info, ra) : decapsulate(A.buf, PACKET_OFF, info, ra);
  const vb = udp ? decapsulateUdp(B.buf, PACKET_OFF, infoB, rb) : decapsulate(B.buf, PACKET_OFF, infoB, rb);
  if (!VERDICTS.has(va)) fail(`unknown verdict ${va}`);
  if (va !== vb || (va === DecapVerdict.OK && (ra.off !== rb.off || ra.len !== rb.len))) fail('decapsulate depends on bytes outside the packet');
  A.checkWrites('decapsulate', PACKET_OFF);
  if (va !== DecapVerdict.OK) {
    if (!sameBytes(A.bytes(PACKET_OFF, len), before.subarray(0, len))) fail(`refused (${va}) but modified the packet`);
    return;
  }
  let want: number;
  let payloadEnd = info.totalLen;
  if (udp) {
    if (info.proto !== Proto.UDP || info.l4Off < 0) fail(`unwrapped protocol ${info.proto} as UDP`);
    const u = PACKET_OFF + info.l4Off;
    const ulen = (before[info.l4Off + 4] << 8) | before[info.l4Off + 5];
    if (ulen < 8 || info.l4Off + ulen > info.totalLen) fail(`UDP length ${ulen} outside the packet`);
    const ck = (before[info.l4Off + 6] << 8) | before[info.l4Off + 7];
    // judged on the bytes as they were (decapsulation may change the inner ECN bits)
    const ok = ck === 0 ? info.version === 4 : fold(sum16(before, info.l4Off, info.l4Off + ulen, fold(pseudoHeaderSum(info.src, info.dst, info.version === 4 ? 1 : 4, Proto.UDP, ulen)))) === 0xffff;
    if (!ok) fail('accepted a UDP tunnel whose checksum is wrong');
    if (ra.off !== u + 8) fail(`inner at ${ra.off - PACKET_OFF}, not right after the UDP header`);
    want = before[info.l4Off + 8] >> 4;
    if (want !== 4 && want !== 6) fail(`accepted GUE first nibble ${want}`);
    payloadEnd = info.l4Off + ulen;
  } else {
    if (info.proto !== Proto.IPIP && info.proto !== Proto.IPV6) fail(`unwrapped protocol ${info.proto}`);
    want = info.proto === Proto.IPIP ? 4 : 6;
  }
  if (ra.version !== want || A.buf[ra.off] >> 4 !== want) fail(`inner version ${ra.version} for outer protocol ${info.proto}`);
  const start = ra.off - PACKET_OFF;
  if (start < info.l4Off || start + ra.len > payloadEnd || ra.len < (want === 4 ? 20 : 40)) fail(`inner [${start}, +${ra.len}) outside the outer payload [${info.l4Off}, ${payloadEnd})`);
  // Only the inner traffic class / TOS byte(s) and the inner IPv4 header checksum may change.
  for (let i = 0; i < len; i++) {
    if (A.buf[PACKET_OFF + i] === before[i]) continue;
    const rel = i - start;
    const ok = want === 4 ? rel === 1 || rel === 10 || rel === 11 : rel === 1;
    if (!ok) fail(`decapsulate changed byte ${i} (inner byte ${rel})`);
    if (rel === 1 && ((A.buf[PACKET_OFF + i] ^ before[i]) & (want === 4 ? 0xfc : 0xcf)) !== 0) fail('decapsulate changed more than the inner ECN bits');
  }
  if (want === 4) {
    const ihl = (A.buf[ra.off] & 15) * 4;
    if (!ipv4HeaderChecksumValid(A.buf, ra.off, ihl)) fail('inner IPv4 header checksum invalid after decapsulation');
  }
  if (!sameBytes(A.bytes(PACKET_OFF, len), B.bytes(PACKET_OFF, len))) fail('decapsulated bytes depend on bytes outside the packet');
}
