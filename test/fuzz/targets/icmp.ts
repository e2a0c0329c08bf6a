// Fuzz target: ICMP errors received (parseIcmpError) and built (Packet Too Big, Fragmentation
// Needed, Time Exceeded). Input: [control][packet]; control bits 0-1 pick the error to build,
// bits 2-7 scale its MTU. Invariants: parseIcmpError reports a quoted packet inside the packet and
// never reads outside it; an error built about any parsed packet fits its limit (1280 / 576 bytes)
// and the output slot, parses, has a correct checksum, and parseIcmpError on it finds the offender's
// addresses again.
import { parsePacket, ParseError } from '../../../shared/packet/parse.js';
import { PacketInfo } from '../../../shared/packet/packet-info.js';
import {
  IcmpErrorInfo, parseIcmpError, mayGenerateIcmpError, buildPacketTooBig6, buildTimeExceeded6, buildFragNeeded4,
  buildTimeExceeded4, ICMP6_ERROR_MAX, ICMP4_ERROR_MAX,
} from '../../../shared/packet/icmp.js';
import { computeL4Checksum } from '../../../shared/packet/checksum.js';
import { ipv4HeaderChecksumValid } from '../../../shared/packet/checksum.js';
import { Proto } from '../../../shared/packet/constants.js';
import { PoisonSlab, PACKET_OFF, fail, checkInSlot } from '../harness/slab.js';
import { checkParse } from '../harness/invariants.js';

const A = new PoisonSlab(0xa5);
const B = new PoisonSlab(0x5a);
const OUT = new PoisonSlab(0x3c);
const info = new PacketInfo();
const infoB = new PacketInfo();
const einfo = new PacketInfo();
const ea = new IcmpErrorInfo();
const eb = new IcmpErrorInfo();
const back = new IcmpErrorInfo();
const SRC6 = Uint32Array.of(0x20010db8, 0x00050000, 0, 0x80);
const SRC4 = Uint32Array.of(0xc0000250, 0, 0, 0);
const EMPTY = new Uint8Array(0);

function sameErr(a: IcmpErrorInfo, b: IcmpErrorInfo): boolean {
  if (a.type !== b.type || a.code !== b.code || a.mtu !== b.mtu || a.innerOff !== b.innerOff || a.innerLen !== b.innerLen) return false;
  if (a.innerVersion !== b.innerVersion || a.innerProto !== b.innerProto) return false;
  for (let i = 0; i < 4; i++) if (a.innerSrc[i] !== b.innerSrc[i] || a.innerDst[i] !== b.innerDst[i]) return false;
  return true;
}

export function fuzz(data: Buffer): void {
  if (data.length < 1) return;
  const ctrl = data[0];
  const len = A.load(data, 1, data.length);
  B.load(data, 1, data.length);
  if (parsePacket(A.buf, PACKET_OFF, len, info, 0x1e) !== ParseError.OK) return;
  parsePacket(B.buf, PACKET_OFF, len, infoB, 0x1e);

  const fa = parseIcmpError(A.buf, PACKET_OFF, info, ea);
  const fb = parseIcmpError(B.buf, PACKET_OFF, infoB, eb);
  if (fa !== fb || (fa && !sameErr(ea, eb))) fail('parseIcmpError depends on bytes outside the packet');
  A.checkWrites('parseIcmpError', PACKET_OFF);
  if (fa) {
    if (ea.innerOff < PACKET_OFF + info.l4Off + 8 || ea.innerOff + ea.innerLen > PACKET_OFF + info.totalLen) fail('quoted packet outside the ICMP error');
    if (ea.innerVersion !== 4 && ea.innerVersion !== 6) fail(`quoted version ${ea.innerVersion}`);
    if (ea.innerLen < (ea.innerVersion === 4 ? 20 : 40)) fail(`quoted ${ea.innerLen} bytes accepted as an IPv${ea.innerVersion} header`);
  }

  const allowed = mayGenerateIcmpError(info, A.buf, PACKET_OFF);
  if (allowed && info.fragOffset !== 0) fail('ICMP error allowed about a non-first fragment');
  if (allowed && info.proto === (info.version === 4 ? Proto.ICMP : Proto.ICMPV6) && (fa || info.icmpType < 0)) fail('ICMP error allowed about an ICMP error');

  // Build an error about it whatever mayGenerateIcmpError said: the builders must be safe on any
  // parsed packet (the caller's policy is checked above).
  OUT.load(EMPTY, 0, 0);
  const o = PACKET_OFF;
  const mtu = (ctrl >> 2) * 1100;
  let n: number;
  if (info.version === 6) n = ctrl & 1 ? buildTimeExceeded6(OUT.buf, o, A.buf, PACKET_OFF, info, SRC6) : buildPacketTooBig6(OUT.buf, o, A.buf, PACKET_OFF, info, SRC6, mtu);
  else n = ctrl & 1 ? buildTimeExceeded4(OUT.buf, o, A.buf, PACKET_OFF, info, SRC4, ctrl) : buildFragNeeded4(OUT.buf, o, A.buf, PACKET_OFF, info, SRC4, mtu, ctrl);
  const max = info.version === 6 ? ICMP6_ERROR_MAX : ICMP4_ERROR_MAX;
  if (n > max) fail(`built an ICMPv${info.version} error of ${n} bytes (max ${max})`);
  checkInSlot('built error', o, n);
  OUT.len = n;
  OUT.checkWrites('ICMP error builder', o);
  const v = parsePacket(OUT.buf, o, n, einfo, -1);
  if (v !== ParseError.OK) fail(`built error does not parse (verdict ${v})`);
  checkParse(v, einfo, OUT.buf, o, n, -1);
  if (einfo.version === 4 && !ipv4HeaderChecksumValid(OUT.buf, o, 20)) fail('built ICMPv4 error has a bad header checksum');
  const c = computeL4Checksum(OUT.buf, o, einfo);
  const stored = (OUT.buf[o + einfo.l4Off + 2] << 8) | OUT.buf[o + einfo.l4Off + 3];
  if (c !== stored) fail(`built error checksum ${stored.toString(16)}, should be ${c.toString(16)}`);
  if (!parseIcmpError(OUT.buf, o, einfo, back)) fail('our own ICMP error is not recognised as one');
  const words = info.version === 4 ? 1 : 4;
  for (let i = 0; i < words; i++) {
    if (back.innerSrc[i] !== info.src[i] || back.innerDst[i] !== info.dst[i]) fail('our ICMP error does not quote the offender\'s addresses');
    if (einfo.dst[i] !== info.src[i]) fail('our ICMP error is not addressed to the offender\'s source');
  }
  if (einfo.version !== info.version || einfo.proto !== (info.version === 6 ? Proto.ICMPV6 : Proto.ICMP)) fail('error of the wrong family or protocol');
}
