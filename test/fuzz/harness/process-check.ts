// The whole-processor fuzz check, shared by the front and back targets. Input:
// [control][vnet header (12 bytes) when control bit 7 is set][packet]; control bits 0-2 pick the
// processor variant. Two processor instances built alike run the same inputs, one over a slab
// poisoned with 0xa5 and one with 0x5a. Invariants:
//   - process() never throws and returns VERDICT_DROP or an offset;
//   - a drop moves exactly one drop counter by exactly one (processors.ts DROP_COUNTERS); a
//     forwarded packet moves none;
//   - a forwarded packet [off, off + outLen) lies inside its slot, and parses;
//   - nothing is written outside [min(returned offset, packet start), packet end) of the slot;
//   - generated packets (aux) lie inside their aux slots and parse;
//   - verdict, output bytes and counters do not depend on bytes outside the packet.
import type { AuxBatch } from '../../../shared/engine/packet-processor.js';
import { VERDICT_DROP } from '../../../shared/engine/packet-processor.js';
import { parsePacket, ParseError } from '../../../shared/packet/parse.js';
import { PacketInfo } from '../../../shared/packet/packet-info.js';
import { PoisonSlab, PACKET_OFF, fail, sameBytes, checkInSlot } from './slab.js';
import { checkParse } from './invariants.js';
import { dropDelta, newAux, fuzzClock, type Subject, AUX_SLOT } from './processors.js';

const A = new PoisonSlab(0xa5);
const B = new PoisonSlab(0x5a);
const vnetA = new Uint8Array(12);
const vnetB = new Uint8Array(12);
const EMPTY = new Uint8Array(0);
const out = new PacketInfo();

const auxA = newAux();
const auxB = newAux();
let snapshot = new Float64Array(0);

function checkAux(aux: AuxBatch, what: string): void {
  if (aux.count < 0 || aux.count > aux.capacity) fail(`${what}: aux count ${aux.count} (capacity ${aux.capacity})`);
  for (let i = 0; i < aux.count; i++) {
    const o = aux.offs[i];
    const l = aux.lens[i];
    const slot = Math.floor(o / AUX_SLOT);
    if (l <= 0 || o < 0 || o + l > (slot + 1) * AUX_SLOT) fail(`${what}: generated packet ${i} [${o}, +${l}) crosses its aux slot`);
    const v = parsePacket(aux.buf, o, l, out, -1);
    if (v !== ParseError.OK) fail(`${what}: generated packet ${i} does not parse (verdict ${v})`);
  }
}

export function processCheck(data: Buffer, pairs: [Subject, Subject][], lbspType: number): void {
  if (data.length < 1) return;
  const ctrl = data[0];
  const [sa, sb] = pairs[(ctrl & 7) % pairs.length];
  let from = 1;
  let vnet = EMPTY;
  let vb = EMPTY;
  if (ctrl & 0x80) {
    if (data.length < 13) return;
    vnetA.set(data.subarray(1, 13));
    vnetB.set(data.subarray(1, 13));
    vnet = vnetA;
    vb = vnetB;
    from = 13;
  }
  const len = A.load(data, from, data.length);
  B.load(data, from, data.length);
  if (len === 0) return;
  const before = snapshot.length === sa.counters.length ? snapshot : (snapshot = new Float64Array(sa.counters.length));
  before.set(sa.counters);
  auxA.count = 0;
  auxB.count = 0;
  const ra = sa.processor.process(A.buf, PACKET_OFF, len, vnet, 0, auxA);
  const rb = sb.processor.process(B.buf, PACKET_OFF, len, vb, 0, auxB);
  fuzzClock.now += 7;
  sa.processor.endBatch?.(fuzzClock.now);
  sb.processor.endBatch?.(fuzzClock.now);
  const name = sa.name;
  if (ra !== rb) fail(`${name}: verdict depends on bytes outside the packet (${ra} vs ${rb})`);
  if (!Number.isInteger(ra) || (ra < 0 && ra !== VERDICT_DROP)) fail(`${name}: process returned ${ra}`);
  const d = dropDelta(before, sa.counters);
  for (let i = 0; i < sa.counters.length; i++) {
    if (sa.counters[i] !== sb.counters[i]) fail(`${name}: counter ${i} depends on bytes outside the packet`);
  }
  if (ra === VERDICT_DROP) {
    // A fragment that completes a tunnel packet counts tunnel_reassembled, and the whole packet may
    // then be dropped for a reason of its own: the one case with two counters.
    const completed = d.moved.includes('tunnel_reassembled (event)') && d.moved.length === 2 && d.total === 2;
    if (!completed && (d.total !== 1 || d.moved.length !== 1)) fail(`${name}: a drop moved drop counters by ${d.total} (${d.moved.join(', ') || 'none'})`);
    A.checkWrites(`${name} (dropped)`, PACKET_OFF);
  } else {
    if (d.total !== 0 || d.moved.length !== 0) fail(`${name}: a forwarded packet moved drop counters (${d.moved.join(', ')})`);
    const n = sa.processor.outLen;
    if (sb.processor.outLen !== n) fail(`${name}: outLen depends on bytes outside the packet`);
    checkInSlot(`${name} output`, ra, n);
    A.checkWrites(name, ra);
    if (!sameBytes(A.bytes(ra, n), B.bytes(rb, n))) fail(`${name}: output bytes depend on bytes outside the packet`);
    const v = parsePacket(A.buf, ra, n, out, lbspType);
    if (v !== ParseError.OK) fail(`${name}: forwarded a packet that does not parse (verdict ${v})`);
    checkParse(v, out, A.buf, ra, n, lbspType);
    if (out.totalLen !== n) fail(`${name}: forwarded ${n} bytes of a ${out.totalLen}-byte packet`);
  }
  if (vnet.length > 0 && !sameBytes(vnetA, vnetB)) fail(`${name}: vnet header depends on bytes outside the packet`);
  if (auxA.count !== auxB.count) fail(`${name}: generated packets depend on bytes outside the packet`);
  checkAux(auxA, name);
}
