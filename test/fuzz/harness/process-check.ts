// The whole-processor fuzz check, shared by the front and back targets. Input:
// [control][vnet header (12 bytes) when control bit 7 is set][packet]; control bits 0-2 pick the
// processor variant. Two processor instances built alike run the same inputs, one over a slab
// poisoned with 0xa5 and one with 0x5a. Invariants:
//   - process() never throws and returns VERDICT_QUEUED, VERDICT_CONSUMED or a drop verdict;
//   - a drop moves exactly one drop counter by exactly one, the reason it returned
//     (processors.ts DROP_COUNTERS); a consumed packet moves one event; a queued packet none
//     (except tunnel_reassembled for the fragment that completed the queued packet);
//   - a packet queued in place lies inside its slot, and parses;
//   - nothing is written outside [min(queued offset, packet start), packet end) of the slot;
//   - generated packets (aux) lie inside their aux slots and parse;
//   - verdict, output bytes and counters do not depend on bytes outside the packet.
import type { TxQueue } from '../../../shared/engine/tx-queue.js';
import { VERDICT_CONSUMED, VERDICT_QUEUED, dropReasonOf } from '../../../shared/engine/packet-processor.js';
import { DROP_REASONS, dropIndex } from '../../../shared/metrics/counter-layout.js';
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

const DROP_INDICES = new Set<number>(DROP_REASONS.map((r) => dropIndex(r)));

/** Queue entries outside the input slab (generated packets) lie inside their aux slots and parse. */
function checkAux(tx: TxQueue, what: string, input: Uint8Array): void {
  if (tx.count < 0 || tx.count > tx.capacity) fail(`${what}: queue count ${tx.count} (capacity ${tx.capacity})`);
  for (let i = 0; i < tx.count; i++) {
    if (tx.bufs[i] === input) continue;
    if (tx.bufs[i] !== tx.aux.buf) fail(`${what}: queued packet ${i} in an unknown slab`);
    const aux = tx.aux;
    const o = tx.offs[i];
    const l = tx.lens[i];
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
  auxA.reset();
  auxB.reset();
  const ra = sa.processor.process(A.buf, PACKET_OFF, len, vnet, 0, auxA);
  const rb = sb.processor.process(B.buf, PACKET_OFF, len, vb, 0, auxB);
  fuzzClock.now += 7;
  sa.processor.endBatch?.(fuzzClock.now);
  sb.processor.endBatch?.(fuzzClock.now);
  const name = sa.name;
  if (ra !== rb) fail(`${name}: verdict depends on bytes outside the packet (${ra} vs ${rb})`);
  if (!Number.isInteger(ra) || (ra < 0 && !DROP_INDICES.has(dropReasonOf(ra))) || (ra >= 0 && ra !== VERDICT_QUEUED && ra !== VERDICT_CONSUMED)) fail(`${name}: process returned ${ra}`);
  const d = dropDelta(before, sa.counters);
  for (let i = 0; i < sa.counters.length; i++) {
    if (sa.counters[i] !== sb.counters[i]) fail(`${name}: counter ${i} depends on bytes outside the packet`);
  }
  // A fragment that completes a tunnel packet counts tunnel_reassembled, and the whole packet may
  // then be dropped for a reason of its own: the one case with two counters.
  const completed = d.moved.includes('tunnel_reassembled (event)');
  if (ra < 0) {
    if (!((completed && d.moved.length === 2 && d.total === 2) || (d.total === 1 && d.moved.length === 1))) fail(`${name}: a drop moved drop counters by ${d.total} (${d.moved.join(', ') || 'none'})`);
    if (sa.counters[dropReasonOf(ra)] === before[dropReasonOf(ra)]) fail(`${name}: the drop reason returned (counter ${dropReasonOf(ra)}) was not counted`);
    A.checkWrites(`${name} (dropped)`, PACKET_OFF);
  } else if (ra === VERDICT_CONSUMED) {
    if (d.total !== 1 || d.moved.length !== 1) fail(`${name}: a consumed packet moved counters by ${d.total} (${d.moved.join(', ') || 'none'})`);
    A.checkWrites(`${name} (consumed)`, PACKET_OFF);
  } else {
    if (!(d.total === 0 || (completed && d.total === 1 && d.moved.length === 1))) fail(`${name}: a queued packet moved drop counters (${d.moved.join(', ')})`);
    let inPlace = -1;
    for (let i = 0; i < auxA.count; i++) if (auxA.bufs[i] === A.buf) inPlace = i;
    let inPlaceB = -1;
    for (let i = 0; i < auxB.count; i++) if (auxB.bufs[i] === B.buf) inPlaceB = i;
    if (inPlace !== inPlaceB) fail(`${name}: what is queued depends on bytes outside the packet`);
    if (inPlace >= 0) {
      const o = auxA.offs[inPlace]!;
      const n = auxA.lens[inPlace]!;
      if (auxB.lens[inPlace] !== n) fail(`${name}: queued length depends on bytes outside the packet`);
      checkInSlot(`${name} output`, o, n);
      A.checkWrites(name, o);
      if (!sameBytes(A.bytes(o, n), B.bytes(auxB.offs[inPlace]!, n))) fail(`${name}: output bytes depend on bytes outside the packet`);
      const v = parsePacket(A.buf, o, n, out, lbspType);
      if (v !== ParseError.OK) fail(`${name}: forwarded a packet that does not parse (verdict ${v})`);
      checkParse(v, out, A.buf, o, n, lbspType);
      if (out.totalLen !== n) fail(`${name}: forwarded ${n} bytes of a ${out.totalLen}-byte packet`);
    } else if (auxA.count === 0) fail(`${name}: queued verdict with nothing queued`);
  }
  if (vnet.length > 0 && !sameBytes(vnetA, vnetB)) fail(`${name}: vnet header depends on bytes outside the packet`);
  if (auxA.count !== auxB.count) fail(`${name}: generated packets depend on bytes outside the packet`);
  checkAux(auxA, name, A.buf);
}
