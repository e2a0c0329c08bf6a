// The whole-processor fuzz check, shared by the front and back targets. Input:
// [control][vnet header (12 bytes) when control bit 7 is set][packet]; control bits 0-2 pick the
// processor variant. With bit 7, bit 6 turns the offloads on as the batch loop has them on a
// device with virtio headers: the header is prepared as a read leaves it (prepareRxVnet), the
// queue has a segment slab (GSO super-packets cut before or after a tunnel), the front's tunnel
// TAP unless bit 4 (a UDP-encap front writes TCP super-packets into the tunnel whole), and with
// bit 5 write-side GRO for TCP and UDP (the back merges the inner packets of a cut USO packet).
// Without bit 6 the queue has no segment slab (a device without offloads).
// Two processor instances built alike run the same inputs, one over a slab
// poisoned with 0xa5 and one with 0x5a. Invariants:
//   - process() never throws and returns VERDICT_QUEUED, VERDICT_CONSUMED or a drop verdict;
//   - a drop moves exactly one drop counter by exactly one, the reason it returned
//     (processors.ts DROP_COUNTERS); a consumed packet moves one event; a queued packet none
//     (except tunnel_reassembled for the fragment that completed the queued packet);
//   - a packet queued in place lies inside its slot, and parses;
//   - nothing is written outside [min(queued offset, packet start), packet end) of the slot;
//   - generated packets (aux) lie inside their aux slots and parse;
//   - GSO segments lie inside the segment slab's used part without overlapping, parse (a super-
//     packet merged from them too), and are the same bytes on both instances;
//   - a frame queued for the TAP parses after its Ethernet header, addressed to the TAP, and says
//     as many wire segments as the super-packet it carries;
//   - a GSO super-packet read: its wire segments are each queued or counted as a drop, none
//     twice (the back: exactly; the front: at least, as segments may be fragmented);
//   - verdict, output bytes and counters do not depend on bytes outside the packet.
import type { TxQueue } from '../../../shared/engine/tx-queue.js';
import { DEV_TAP } from '../../../shared/engine/tx-queue.js';
import { prepareRxVnet, vnetSegments } from '../../../shared/tun/vnet-header.js';
import { VERDICT_CONSUMED, VERDICT_QUEUED, dropReasonOf } from '../../../shared/engine/packet-processor.js';
import { DROP_REASONS, dropIndex } from '../../../shared/metrics/counter-layout.js';
import { parsePacket, ParseError } from '../../../shared/packet/parse.js';
import { PacketInfo } from '../../../shared/packet/packet-info.js';
import { PoisonSlab, PACKET_OFF, fail, sameBytes, checkInSlot } from './slab.js';
import { checkParse } from './invariants.js';
import { dropDelta, newAux, newOffloadQueue, fuzzClock, type Subject, AUX_SLOT, TAP_MAC } from './processors.js';

const A = new PoisonSlab(0xa5);
const B = new PoisonSlab(0x5a);
const vnetA = new Uint8Array(12);
const vnetB = new Uint8Array(12);
const EMPTY = new Uint8Array(0);
const out = new PacketInfo();

const ETH_HLEN = 14;
const plainA = newAux();
const plainB = newAux();
// offload queues: [tap][gro]
const offA = [[newOffloadQueue(false, false), newOffloadQueue(false, true)], [newOffloadQueue(true, false), newOffloadQueue(true, true)]];
const offB = [[newOffloadQueue(false, false), newOffloadQueue(false, true)], [newOffloadQueue(true, false), newOffloadQueue(true, true)]];
let snapshot = new Float64Array(0);

const DROP_INDICES = new Set<number>(DROP_REASONS.map((r) => dropIndex(r)));

/** Queue entries outside the input slab (generated packets) lie inside their aux slots and parse. */
function checkAux(tx: TxQueue, what: string, input: Uint8Array): void {
  if (tx.count < 0 || tx.count > tx.capacity) fail(`${what}: queue count ${tx.count} (capacity ${tx.capacity})`);
  for (let i = 0; i < tx.count; i++) {
    if (tx.bufs[i] === input) continue;
    if (tx.seg !== undefined && tx.bufs[i] === tx.seg.buf) continue;
    if (tx.bufs[i] !== tx.aux.buf) fail(`${what}: queued packet ${i} in an unknown slab`);
    if (tx.devs[i] === DEV_TAP) fail(`${what}: generated packet ${i} queued for the TAP`);
    const aux = tx.aux;
    const o = tx.offs[i];
    const l = tx.lens[i];
    const slot = Math.floor(o / AUX_SLOT);
    if (l <= 0 || o < 0 || o + l > (slot + 1) * AUX_SLOT) fail(`${what}: generated packet ${i} [${o}, +${l}) crosses its aux slot`);
    const v = parsePacket(aux.buf, o, l, out, -1);
    if (v !== ParseError.OK) fail(`${what}: generated packet ${i} does not parse (verdict ${v})`);
  }
}

/**
 * Queue entries in the segment slab: inside its used part, not overlapping, parsing (a merged
 * super-packet too: its IP length covers it), the same bytes and wire counts on both instances.
 * Returns their wire packets.
 */
function checkSegments(ta: TxQueue, tb: TxQueue, what: string, lbspType: number): number {
  const seg = ta.seg;
  const segB = tb.seg;
  if (seg === undefined || segB === undefined) return 0;
  let wire = 0;
  let prevEnd = -1;
  let prevOff = -1;
  for (let i = 0; i < ta.count; i++) {
    if (ta.bufs[i] !== seg.buf) continue;
    const o = ta.offs[i]!;
    const l = ta.lens[i]!;
    if (tb.bufs[i] !== segB.buf || tb.lens[i] !== l) fail(`${what}: segment ${i} depends on bytes outside the packet`);
    if (l <= 0 || o < 0 || o + l > seg.used) fail(`${what}: segment ${i} [${o}, +${l}) outside the used segment slab (${seg.used} bytes)`);
    // entries of one cut go in increasing order; a new cut may restart lower only after a reset
    if (o > prevOff && o < prevEnd) fail(`${what}: segment ${i} [${o}, +${l}) overlaps the one before (ends ${prevEnd})`);
    prevOff = o;
    prevEnd = o + l;
    if (!sameBytes(seg.buf.subarray(o, o + l), segB.buf.subarray(tb.offs[i]!, tb.offs[i]! + l))) fail(`${what}: segment ${i} bytes depend on bytes outside the packet`);
    const v = parsePacket(seg.buf, o, l, out, lbspType);
    if (v !== ParseError.OK) fail(`${what}: queued segment ${i} does not parse (verdict ${v})`);
    if (out.totalLen !== l) fail(`${what}: queued ${l} bytes of a ${out.totalLen}-byte segment`);
    const n = vnetSegments(ta.vnet, i);
    if (n !== vnetSegments(tb.vnet, i)) fail(`${what}: segment ${i} wire count depends on bytes outside the packet`);
    wire += n;
  }
  return wire;
}

export function processCheck(data: Buffer, pairs: [Subject, Subject][], lbspType: number): void {
  if (data.length < 1) return;
  const ctrl = data[0];
  const [sa, sb] = pairs[(ctrl & 7) % pairs.length];
  let from = 1;
  let vnet = EMPTY;
  let vb = EMPTY;
  let auxA = plainA;
  let auxB = plainB;
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
  const offload = (ctrl & 0xc0) === 0xc0;
  let segs = 1;
  let wireChecked = true;
  // a GSO packet (any gso_type, even one segment long) is cut and judged segment by segment
  let gsoRead = false;
  if (offload) {
    const tap = ctrl & 0x10 ? 0 : 1;
    const gro = ctrl & 0x20 ? 1 : 0;
    auxA = offA[tap]![gro]!;
    auxB = offB[tap]![gro]!;
    gsoRead = vnetA[1] !== 0;
    segs = prepareRxVnet(A.buf, PACKET_OFF, len, vnetA, 0);
    prepareRxVnet(B.buf, PACKET_OFF, len, vnetB, 0);
    // The wire count is judged only for a packet exactly as long as its IP header says: the
    // kernel trims trailing bytes before a packet reaches a TUN, and the processors cut what
    // the header describes while the read's count (prepareRxVnet) covers the whole read.
    if (gsoRead && (parsePacket(A.buf, PACKET_OFF, len, out, -1) !== ParseError.OK || out.totalLen !== len)) wireChecked = false;
  }
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
  const segWire = checkSegments(auxA, auxB, name, lbspType);
  if (ra < 0) {
    if (!((completed && d.moved.length === 2 && d.total === 2) || (d.total === 1 && d.moved.length === 1))) fail(`${name}: a drop moved drop counters by ${d.total} (${d.moved.join(', ') || 'none'})`);
    if (sa.counters[dropReasonOf(ra)] === before[dropReasonOf(ra)]) fail(`${name}: the drop reason returned (counter ${dropReasonOf(ra)}) was not counted`);
    A.checkWrites(`${name} (dropped)`, PACKET_OFF);
  } else if (ra === VERDICT_CONSUMED) {
    if (d.total !== 1 || d.moved.length !== 1) fail(`${name}: a consumed packet moved counters by ${d.total} (${d.moved.join(', ') || 'none'})`);
    A.checkWrites(`${name} (consumed)`, PACKET_OFF);
  } else {
    // a super-packet is several packets: some of its segments may be dropped, each counted once
    // (with trailing bytes the read counts more segments than are cut: a bound, not a count)
    if (gsoRead) {
      let wire = segWire;
      for (let i = 0; i < auxA.count; i++) if (auxA.bufs[i] === A.buf) wire += vnetSegments(auxA.vnet, i);
      const isBack = sa.processor.constructor.name === 'BackProcessor';
      if (d.total > segs) fail(`${name}: a super-packet of ${segs} segments moved drop counters by ${d.total} (${d.moved.join(', ')})`);
      if (wireChecked && (isBack ? wire + d.total !== segs : wire + d.total < segs)) fail(`${name}: a super-packet of ${segs} segments: ${wire} queued on the wire + ${d.total} dropped`);
    } else if (!(d.total === 0 || (completed && d.total === 1 && d.moved.length === 1))) fail(`${name}: a queued packet moved drop counters (${d.moved.join(', ')})`);
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
      // a TAP frame: Ethernet header to the TAP's MAC, then the tunnel super-packet
      const tap = auxA.devs[inPlace] === DEV_TAP;
      if (tap !== (auxB.devs[inPlace] === DEV_TAP)) fail(`${name}: the device depends on bytes outside the packet`);
      const e = tap ? ETH_HLEN : 0;
      if (tap) {
        if (n <= ETH_HLEN || !sameBytes(A.bytes(o, 6), TAP_MAC)) fail(`${name}: TAP frame [${o}, +${n}) not addressed to the TAP`);
        if (wireChecked && vnetSegments(auxA.vnet, inPlace) !== segs) fail(`${name}: TAP frame says ${vnetSegments(auxA.vnet, inPlace)} wire segments for a super-packet of ${segs}`);
      }
      const v = parsePacket(A.buf, o + e, n - e, out, lbspType);
      if (v !== ParseError.OK) fail(`${name}: forwarded a packet that does not parse (verdict ${v})`);
      checkParse(v, out, A.buf, o + e, n - e, lbspType);
      if (out.totalLen !== n - e) fail(`${name}: forwarded ${n - e} bytes of a ${out.totalLen}-byte packet`);
    } else if (auxA.count === 0 && !gsoRead) fail(`${name}: queued verdict with nothing queued`);
    // (a super-packet whose every segment was dropped is queued with nothing: each segment counted)
  }
  if (vnet.length > 0 && !sameBytes(vnetA, vnetB)) fail(`${name}: vnet header depends on bytes outside the packet`);
  if (auxA.count !== auxB.count) fail(`${name}: generated packets depend on bytes outside the packet`);
  checkAux(auxA, name, A.buf);
}
