// MSLB-F per-packet logic: parse, pick a back for packets to a service (front/decision.ts), then
// rewrite the destination (translate) or wrap the packet toward the back (encap). Every drop is
// counted by reason. The compiled table arrives from the main thread and is swapped in whole.
import type { TxQueue } from '../shared/engine/tx-queue.js';
import { VERDICT_CONSUMED, VERDICT_QUEUED, dropVerdict } from '../shared/engine/packet-processor.js';
import type { RoleProcessor } from '../shared/engine/worker-runtime.js';
import type { FlowQuery, FlowSnapshot, ToWorker } from '../shared/engine/worker-messages.js';
import { PacketInfo } from '../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../shared/packet/parse.js';
import { isMulticastDst } from '../shared/packet/address-class.js';
import { decrementHopLimit, rewriteDst } from '../shared/packet/translate.js';
import { incrementHopLimit } from '../shared/packet/hop-limit.js';
import { Proto } from '../shared/packet/constants.js';
import { decapsulate, DecapResult, DecapVerdict } from '../shared/packet/encap.js';
import { TunnelReassembly, REASM_HELD } from '../shared/tunnel/tunnel-reassembly.js';
import { addrDelta } from '../shared/packet/checksum.js';
import { decapsulateUdp } from '../shared/packet/udp-encap.js';
import { readLbspClient, readLbspServer } from '../shared/packet/lbsp.js';
import { isSteerableError, readQuote, QuotedFlow, QUOTE_OK, QUOTE_TRUNCATED } from '../shared/packet/icmp-quote.js';
import { CompiledTable, KEY_LABEL, KEY_SOURCE_LABEL, MODE_ENCAP, type CompiledTableTransfer } from './table/compiled-table.js';
import { VIRTIO_NET_HDR_F_NEEDS_CSUM, shiftVnetHeader, vnetHdrLen, vnetSegments } from '../shared/tun/vnet-header.js';
import { CUT_OK, CUT_TOO_BIG } from '../shared/engine/segment-slab.js';
import { TAP_NOT_TAKEN, TunnelOffload } from '../shared/tunnel/tunnel-offload.js';
import {
  backendPacketsIndex,
  decisionIndex,
  DECISION_REASONS,
  dropIndex,
  eventIndex,
  MAX_SERVICE_SLOTS,
  SERVICE_SINK_SLOT,
  servicePacketsIndex,
} from '../shared/metrics/counter-layout.js';
import {
  decide,
  DecisionInput,
  DecisionResult,
  REASON_BACKEND_DOWN,
  REASON_FLOW_LABEL,
  REASON_LBSP_SERVER,
  REASON_NOT_SERVICE,
  REASON_NAMES,
} from './decision.js';
import type { FrontRole } from './front-role.js';
import { FlowPinning } from './flow-pinning.js';
import { PmtuCache } from '../shared/tunnel/path-mtu-cache.js';
import { IcmpEmitter, ICMP_TIME_EXCEEDED } from '../shared/tunnel/icmp-emitter.js';
import { TunnelMtu, MTU_DROPPED, MTU_FIT, MTU_FRAG_INNER, MTU_FRAG_OUTER } from '../shared/tunnel/tunnel-mtu.js';
import { FabricIcmp, FABRIC_HANDLED } from './fabric-icmp.js';
import { TunnelAccept } from './tunnel-accept.js';
import { SentFlows } from '../shared/tunnel/sent-flows.js';

/** The config schema's defaults, for roles built without a flowTable section. */
const DEFAULT_FLOW_TABLE = { size: 65536, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 };

const D_MALFORMED = dropIndex('malformed');
const E_MULTICAST = eventIndex('multicast_ignored');
const D_NOT_SERVICE = dropIndex('not_service');
const D_NO_ROUTE = dropIndex('no_route');
const D_BACKEND_DOWN = dropIndex('backend_down');
const D_TOO_BIG = dropIndex('too_big');
const DEC_LBSP = decisionIndex('lbsp_server');
const DEC_PREFIX = decisionIndex('source_prefix');
const DEC_LABEL = decisionIndex('flow_label');
/**
 * Offset of a decision inside a service's counters (servicePacketsIndex), by decide()'s REASON_*
 * (only the three that choose a back are read), and for a flow-table hit.
 */
const SVC_DEC_BY_REASON = Int32Array.from(REASON_NAMES, (n) => 2 + (DECISION_REASONS as readonly string[]).indexOf(n));
const SVC_DEC_FLOW_TABLE = 2 + DECISION_REASONS.indexOf('flow_table');
const E_LBSP_BAD_LEN = eventIndex('lbsp_ignored_bad_length');
/** By DecisionResult.lbspIgnored (LBSP_* of decision.ts; 0 = not ignored). */
const E_LBSP_IGNORED = [0, eventIndex('lbsp_ignored_unknown_server'), eventIndex('lbsp_ignored_backend_down'), eventIndex('lbsp_ignored_other_service'), eventIndex('lbsp_ignored_draining')];
const E_LBSP_CLIENT_FALLBACK = eventIndex('lbsp_client_fallback');
const D_HOP_LIMIT = dropIndex('hop_limit');
const D_UNAUTHORIZED = dropIndex('unauthorized_source');
const E_UNWRAPPED = eventIndex('tunnel_unwrapped');
const E_FABRIC_ICMP = eventIndex('fabric_icmp_handled');
/** The config schema's icmp defaults, for roles built without them. */
const DEFAULT_ICMP = { ratePerSecond: 100, burst: 50, perSourceRate: 20, perSourceBurst: 10 };
const E_ST_FLOW = eventIndex('icmp_steered_flow_table');
const E_ST_KEY = eventIndex('icmp_steered_client_key');
const E_ST_COPIES = eventIndex('icmp_steered_copies');
const E_COPIES = eventIndex('icmp_steer_copies');
const E_REF_TRUNCATED = eventIndex('icmp_refused_quote_truncated');
const E_REF_INVALID = eventIndex('icmp_refused_quote_invalid');
const E_REF_NOT_SERVICE = eventIndex('icmp_refused_not_service');
const E_REF_NO_ROUTE = eventIndex('icmp_refused_no_route');
const E_REF_BACKEND_DOWN = eventIndex('icmp_refused_backend_down');
const E_REF_COPY_LIMITED = eventIndex('icmp_refused_copy_limited');
/** Aux slots left free before one more copy: the copy, its outer fragments, the original's. */
const COPY_RESERVE = 6;

export class FrontProcessor implements RoleProcessor {
  private readonly info = new PacketInfo();
  private readonly input = new DecisionInput();
  private readonly result = new DecisionResult();
  private readonly backAddr = new Uint32Array(4);
  private readonly outerSrc = new Uint32Array(4);
  private readonly src4: Uint32Array | null;
  private readonly src6: Uint32Array | null;
  private table: CompiledTable | null = null;
  /** First service counter (servicePacketsIndex) per service index of the table in force. */
  private svcAt = new Int32Array(0);
  /** Tunnel MTU: fits / ICMP / fragments / learning; owns the outer IPv4 ID sequence. */
  private readonly tmtu: TunnelMtu;
  private readonly icmp: IcmpEmitter;
  private readonly fabric: FabricIcmp;
  private readonly accept: TunnelAccept;
  private readonly reasm: TunnelReassembly;
  /** Inner flows sent per back lately, to check fabric ICMP errors against. */
  private readonly sent: SentFlows;
  private readonly decap = new DecapResult();
  private readonly outerDst = new Uint32Array(4);
  private readonly noVnet = new Uint8Array(0);
  private readonly quote = new QuotedFlow();
  private readonly keepDst = new Uint32Array(4);
  private now: number;
  /** GSO split + checksum completion before the outer header (offloads on). */
  private readonly tunnel: TunnelOffload;
  /**
   * Outer hop limit written into the TUN: the kernel forwards what the front writes and decrements
   * it once on the way out, so write encap.hopLimit + 1 and the wire carries the configured value,
   * as for a packet the front originated (RFC 2473 6.3). 255 configured leaves as 254.
   */
  private readonly outerHopLimit: number;
  /** This worker's flow table (SPEC 2 step 5). */
  readonly flows: FlowPinning;

  constructor(
    private readonly role: FrontRole,
    private readonly counters: Float64Array,
    /** Clock in ms (flow table, ICMP rate limit, path MTU ages); tests and the fuzzer pass a fake one. */
    clock: () => number = Date.now,
    /** Flow-table hash seed (random per worker by default, against flooding one bucket). */
    seed?: number,
  ) {
    this.src4 = role.encapSource4 ? Uint32Array.from(role.encapSource4) : null;
    this.src6 = role.encapSource6 ? Uint32Array.from(role.encapSource6) : null;
    this.outerHopLimit = Math.min(255, role.hopLimit + 1);
    this.flows = new FlowPinning(role.flowTable ?? DEFAULT_FLOW_TABLE, counters, clock, seed);
    this.now = clock();
    const ic = role.icmp ?? DEFAULT_ICMP;
    const perSource = ic.perSourceRate !== undefined && ic.perSourceBurst !== undefined ? { ratePerSecond: ic.perSourceRate, burst: ic.perSourceBurst } : null;
    this.icmp = new IcmpEmitter(counters, ic.ratePerSecond, ic.burst, this.now, null, null, perSource);
    const cache = role.pmtu ? PmtuCache.fromShared(role.pmtu) : PmtuCache.create(role.tunMtu ?? 1500);
    this.tmtu = new TunnelMtu(cache, this.icmp, counters, (this.now & 0xffff) + 1);
    this.tmtu.nowMs = this.now;
    this.tmtu.udpPort = role.udpPort ?? 0;
    this.sent = new SentFlows(((seed ?? Math.random() * 0x100000000) ^ 0x27d4eb2f) | 0, this.now);
    this.fabric = new FabricIcmp(this.tmtu, this.src4, this.src6, this.sent, role.pmtuLearning ?? true, counters);
    this.reasm = new TunnelReassembly(counters);
    this.tunnel = new TunnelOffload(counters);
    this.accept = new TunnelAccept(role.acceptTunnelFrom ?? []);
  }

  update(msg: ToWorker): void {
    if (msg.type === 'table') this.setTable(CompiledTable.fromTransfer(msg.table as CompiledTableTransfer));
  }

  flowSnapshot(q: FlowQuery, queue: number): FlowSnapshot {
    return this.flows.snapshot(q, queue);
  }

  /** For tests and the in-process path: install a compiled table directly. */
  setTable(t: CompiledTable): void {
    this.table = t;
    // config validation bounds the services by the slots; the sink takes any beyond (tests)
    this.svcAt = Int32Array.from({ length: t.serviceCount }, (_, s) => servicePacketsIndex(s < MAX_SERVICE_SLOTS ? s : SERVICE_SINK_SLOT));
    this.flows.setTable(t); // pinned flows re-resolve their back by slot (name) into this table
  }

  endBatch(nowMs: number): void {
    this.flows.endBatch(nowMs);
    this.now = nowMs;
    this.tmtu.nowMs = nowMs;
  }

  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const info = this.info;
    const c = this.counters;
    const err = parsePacket(buf, off, len, info, this.role.lbspType);
    if (err !== ParseError.OK) return this.drop(D_MALFORMED); // SPEC 5: bad version and every other parse failure
    if (isMulticastDst(info)) {
      c[E_MULTICAST]++; // the host's own MLD reports: no service is multicast
      return VERDICT_CONSUMED;
    }
    const t = this.table;
    if (t === null) return this.drop(D_NO_ROUTE);
    const v = info.version;
    const proto = info.proto;
    if (proto === Proto.ICMP || proto === Proto.ICMPV6) {
      // ICMP errors from the fabric about our tunnel packets (fabric-icmp.ts)
      if (this.fabric.handle(buf, off, info, t, tx) === FABRIC_HANDLED) {
        c[E_FABRIC_ICMP]++;
        return VERDICT_CONSUMED;
      }
      const ty = info.icmpType;
      const isError = v === 4 ? ty === 3 || ty === 4 || ty === 5 || ty === 11 || ty === 12 : ty >= 0 && ty < 128;
      // SPEC 5: an error to our outer source quoting something we never sent
      if (isError && t.serviceIndex(v, info.dst) < 0) return this.drop(D_MALFORMED);
    } else if (proto === Proto.IPIP || proto === Proto.IPV6) {
      // SPEC 3 "Tunnel packets a front accepts" (tunnel-accept.ts)
      if (this.accept.accepts(info)) return info.isFragment ? this.reassemble(buf, off, tx) : this.unwrap(buf, off, vnet, vnetOff, tx);
      if (t.serviceIndex(v, info.dst) < 0) return this.drop(D_UNAUTHORIZED);
    } else if (proto === Proto.UDP && this.tmtu.udpPort !== 0 && this.accept.accepts(info) && t.serviceIndex(v, info.dst) < 0) {
      // IP-in-UDP tunnels to the front's tunnel address on its own encap.udpPort, from an accepted
      // source (multi-stage behind a UDP-tunnelling front). Outer fragments: reassembled first, the
      // port is checked on the whole packet (unwrap).
      if (info.isFragment) return this.reassemble(buf, off, tx);
      if (info.dstPort === this.tmtu.udpPort) {
        // same-flow tunnel packets GRO merged on the way (the first stage's write-side GRO): cut
        if (vnet.length > 0 && vnet[vnetOff + 1] !== 0) return this.unwrapSegments(buf, off, info.totalLen, vnet, vnetOff, tx);
        return this.unwrap(buf, off, vnet, vnetOff, tx);
      }
    }
    return this.balance(buf, off, info, t, true, vnet, vnetOff, tx);
  }

  /** Count a drop by its reason and return its verdict. */
  private drop(reason: number): number {
    this.counters[reason]++;
    return dropVerdict(reason);
  }

  /**
   * The unfragmented tunnel packet at buf[off] (outer parsed into this.info) from an accepted
   * source: unwrap, then balance the inner packet (inner destination a service: multi-stage) or
   * forward it as it is (inner source a service: return traffic from a back).
   */
  private unwrap(buf: Uint8Array, off: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const info = this.info;
    const d = this.decap;
    let dv: number;
    if (info.proto !== Proto.UDP) dv = decapsulate(buf, off, info, d);
    else if (info.dstPort !== this.tmtu.udpPort) return this.drop(D_NOT_SERVICE); // a reassembled datagram to another port
    else dv = decapsulateUdp(buf, off, info, d);
    if (dv !== DecapVerdict.OK) return this.drop(dv === DecapVerdict.NOT_TUNNEL ? D_UNAUTHORIZED : D_MALFORMED);
    const od = this.outerDst;
    od[0] = info.dst[0]; od[1] = info.dst[1]; od[2] = info.dst[2]; od[3] = info.dst[3];
    const os = this.outerSrc; // free until encap() of the inner packet, which runs after the check below
    os[0] = info.src[0]; os[1] = info.src[1]; os[2] = info.src[2]; os[3] = info.src[3];
    const ov = info.version;
    if (parsePacket(buf, d.off, d.len, info, this.role.lbspType) !== ParseError.OK) return this.drop(D_MALFORMED);
    // SPEC 5: a tunnel packet whose inner packet is a tunnel packet to the same node
    if ((info.proto === Proto.IPIP || info.proto === Proto.IPV6) && info.version === ov && info.dst[0] === od[0] && info.dst[1] === od[1] && info.dst[2] === od[2] && info.dst[3] === od[3]) {
      return this.drop(D_MALFORMED);
    }
    const t = this.table!;
    this.counters[E_UNWRAPPED]++;
    if (vnet.length > 0) shiftVnetHeader(vnet, vnetOff / 12, off - d.off);
    if (!isMulticastDst(info) && t.serviceIndex(info.version, info.dst) >= 0) return this.balance(buf, d.off, info, t, false, vnet, vnetOff, tx);
    if (t.serviceIndex(info.version, info.src) >= 0) {
      // return traffic from a back (draft section 6): forwarded as it is; the kernel's forwarding
      // of what we write is this hop for the inner packet. Only from a back's own address (SPEC 3):
      // anyone else inside the accepted prefix would make the front a relay for packets from S.
      if (!t.isBackAddress(ov, this.outerSrc)) return this.drop(D_UNAUTHORIZED);
      tx.forward(buf, d.off, d.len, vnet, vnetOff);
      return VERDICT_QUEUED;
    }
    return this.drop(D_NOT_SERVICE);
  }

  /**
   * A UDP tunnel super-packet (virtio UDP_L4 GSO) from an accepted source: cut natively into the
   * segment slab (each segment a complete tunnel packet) and unwrap each like a packet read alone.
   * Returns VERDICT_QUEUED, or a drop verdict when nothing could be cut (too_big / malformed).
   */
  private unwrapSegments(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const seg = tx.seg;
    if (seg === undefined) return this.drop(D_TOO_BIG);
    const cut = seg.cut(buf, off, len, vnet, vnetOff);
    if (cut !== CUT_OK) return this.drop(cut === CUT_TOO_BIG ? D_TOO_BIG : D_MALFORMED);
    const info = this.info;
    for (let k = seg.cutFirst, end = seg.cutFirst + seg.cutCount; k < end; k++) {
      const so = seg.offs[k]!;
      if (parsePacket(seg.buf, so, seg.lens[k]!, info, this.role.lbspType) !== ParseError.OK) {
        this.counters[D_MALFORMED]++;
        continue;
      }
      this.unwrap(seg.buf, so, this.noVnet, 0, tx);
    }
    return VERDICT_QUEUED;
  }

  /**
   * An outer fragment from an accepted source: bounded reassembly (shared/tunnel/tunnel-reassembly.ts).
   * A complete tunnel packet is unwrapped in its own aux slot and what it becomes is queued from
   * there; a fragment held for later is consumed (not a drop).
   */
  private reassemble(buf: Uint8Array, off: number, tx: TxQueue): number {
    const base = this.reasm.add(buf, off, this.info, this.role.lbspType, this.now, tx);
    if (base < 0) return base === REASM_HELD ? VERDICT_CONSUMED : base;
    return this.unwrap(tx.aux.buf, base, this.noVnet, 0, tx);
  }

  /**
   * Balance the parsed packet at buf[off] to a back (SPEC 2) and translate or wrap it.
   * hopDone: the kernel decremented the hop limit when it forwarded the packet into the TUN (a
   * client's packet); false for an inner packet we unwrapped, whose hop this front must count.
   */
  private balance(buf: Uint8Array, off: number, info: PacketInfo, t: CompiledTable, hopDone: boolean, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const c = this.counters;
    const v = info.version;
    const r = this.result;
    const flows = this.flows;
    if (info.icmpType >= 0 && isSteerableError(info)) return this.steerError(buf, off, info, t, hopDone, vnet, vnetOff, tx);
    if (info.lbspStatus === 2) c[E_LBSP_BAD_LEN]++;
    if (flows.lookup(info)) {
      // SPEC 2 step 5: a pinned flow keeps its back (reason flow_table, counted by lookup)
      r.back = flows.back; r.slot = flows.slot; r.service = flows.service;
      c[this.svcAt[r.service]! + SVC_DEC_FLOW_TABLE]++;
    } else {
      const inp = this.input;
      inp.family = v === 4 ? 4 : 6;
      inp.src.set(info.src);
      inp.service.set(info.dst);
      inp.flowLabel = info.flowLabel;
      inp.hasLbsp = false;
      if (info.lbspStatus === 1) {
        inp.hasLbsp = readLbspClient(buf, off, info, inp.lbspClient) && readLbspServer(buf, off, info, inp.lbspServer);
      }
      const reason = decide(t, inp, r);
      if (r.lbspIgnored !== 0) c[E_LBSP_IGNORED[r.lbspIgnored]!]++;
      if (r.lbspClientFellBack) c[E_LBSP_CLIENT_FALLBACK]++;
      if (r.back < 0) return this.drop(reason === REASON_NOT_SERVICE ? D_NOT_SERVICE : reason === REASON_BACKEND_DOWN ? D_BACKEND_DOWN : D_NO_ROUTE);
      c[reason === REASON_LBSP_SERVER ? DEC_LBSP : reason === REASON_FLOW_LABEL ? DEC_LABEL : DEC_PREFIX]++;
      c[this.svcAt[r.service]! + SVC_DEC_BY_REASON[reason]!]++;
      flows.remember(info, r.back, r.slot);
    }
    return this.toBack(buf, off, info, t, r.back, r.slot, r.service, hopDone, vnet, vnetOff, tx, flows.entry);
  }

  /**
   * Send the parsed packet at buf[off] to back `back` (slot, service index): counted per back, hop
   * limit checked, then translated or wrapped. `entry`: the packet's flow-table entry when it was a
   * pinned flow's whole packet (FlowPinning.entry), else -1. Returns the verdict.
   */
  private toBack(buf: Uint8Array, off: number, info: PacketInfo, t: CompiledTable, back: number, slot: number, service: number, hopDone: boolean, vnet: Uint8Array, vnetOff: number, tx: TxQueue, entry: number): number {
    const c = this.counters;
    const v = info.version;
    const b = this.backAddr;
    const fam = t.backAddress(back, service, b);
    const segs = vnet.length > 0 ? vnetSegments(vnet, vnetOff / 12) : 1; // wire packets (SPEC 8)
    const len = info.totalLen;
    c[backendPacketsIndex(slot)] += segs;
    c[backendPacketsIndex(slot) + 1] += len;
    const si = this.svcAt[service]!;
    c[si] += segs;
    // wire bytes: each segment of a super-packet carries its own copy of the headers
    c[si + 1] += segs > 1 ? len + (segs - 1) * vnetHdrLen(vnet, vnetOff / 12) : len;
    // Hop limit (RFC 2473 section 3, RFC 2003 3.1): this host is one hop. A client's packet was
    // decremented by the kernel on its way into the TUN; an unwrapped inner packet was not, so its
    // hop is taken here. A packet that would leave with 0 is dropped with Time Exceeded.
    if ((hopDone ? info.hopLimit : info.hopLimit - 1) <= 0) {
      this.icmp.send(tx, buf, off, info, ICMP_TIME_EXCEEDED, 0, this.now);
      return this.drop(D_HOP_LIMIT);
    }
    if (t.a.backMode[back] === MODE_ENCAP) return this.encap(buf, off, info, fam, slot, hopDone, vnet, vnetOff, tx, entry);
    // translate: same family is guaranteed by table validation
    const partial = vnet.length > 0 && (vnet[vnetOff] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    rewriteDst(buf, off, info, b, addrDelta(info.dst, b, v === 4 ? 1 : 4), partial);
    // The kernel forwards what we write and decrements it once more: give that back, so the host
    // counts one hop as in encap mode (the inner header is not decremented on the way out there).
    if (hopDone) incrementHopLimit(buf, off, info);
    tx.forward(buf, off, info.totalLen, vnet, vnetOff);
    return VERDICT_QUEUED;
  }

  /**
   * An ICMP error addressed to service S (SPEC 2 step 6): a router on the client's side could not
   * deliver a packet the server sent (too big, unreachable, out of hops). It goes to the back that
   * carries the quoted flow, so the server that owns the connection learns of it: the flow table's
   * pin of the reversed quoted flow; else the decision taken with the quoted destination (the
   * client) as the key; for a pool keyed by flow label or LBSP, which the quote cannot give back, a
   * copy to every member that is up. A quote that is not a packet from S is malformed (SPEC 5).
   */
  private steerError(buf: Uint8Array, off: number, info: PacketInfo, t: CompiledTable, hopDone: boolean, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const c = this.counters;
    const q = this.quote;
    const v = info.version;
    const qs = readQuote(buf, off + info.l4Off + 8, info.l4Len - 8, v, q);
    if (qs !== QUOTE_OK) {
      c[qs === QUOTE_TRUNCATED ? E_REF_TRUNCATED : E_REF_INVALID]++;
      return this.drop(D_MALFORMED);
    }
    const d = info.dst;
    const qsrc = q.src;
    if (qsrc[0] !== d[0] || qsrc[1] !== d[1] || qsrc[2] !== d[2] || qsrc[3] !== d[3]) {
      c[E_REF_NOT_SERVICE]++; // quotes a packet the service it is addressed to never sent
      return this.drop(D_MALFORMED);
    }
    if (!q.nonFirst && this.flows.lookupReversed(v, q.proto, qsrc, q.dst, q.srcPort, q.dstPort)) {
      c[E_ST_FLOW]++;
      const f = this.flows;
      return this.toBack(buf, off, info, t, f.back, f.slot, f.service, hopDone, vnet, vnetOff, tx, -1);
    }
    const inp = this.input;
    const r = this.result;
    inp.family = v === 4 ? 4 : 6;
    inp.src.set(q.dst);
    inp.service.set(qsrc);
    inp.flowLabel = 0;
    inp.hasLbsp = false;
    const reason = decide(t, inp, r);
    if (r.back < 0) {
      if (reason === REASON_BACKEND_DOWN) {
        c[E_REF_BACKEND_DOWN]++;
        return this.drop(D_BACKEND_DOWN);
      }
      c[E_REF_NO_ROUTE]++;
      return this.drop(D_NO_ROUTE);
    }
    if (v === 6 && r.target >= 0 && this.keyLost(t, r.target)) return this.copies(buf, off, info, t, r.target, r.back, r.slot, r.service, hopDone, vnet, vnetOff, tx);
    c[E_ST_KEY]++;
    return this.toBack(buf, off, info, t, r.back, r.slot, r.service, hopDone, vnet, vnetOff, tx, -1);
  }

  /**
   * The target's pool hashes something the quote of a server's packet cannot give back: the
   * client's flow label (the quote carries the server's) or an LBSP option of the client's packets.
   */
  private keyLost(t: CompiledTable, target: number): boolean {
    const a = t.a;
    if (a.targetCount[target]! < 2) return false;
    const k = a.targetKey[target];
    return (t.meta.flowLabelEnabled && (k === KEY_LABEL || k === KEY_SOURCE_LABEL)) || t.meta.lbspEnabled;
  }

  /**
   * A copy of the error to every member of the target's pool that is up (draining ones too: their
   * pinned flows are still theirs). The chosen back gets the received packet; every other member a
   * copy in an aux slot, each drawing on the ICMP rate limit, as long as slots are left.
   */
  private copies(buf: Uint8Array, off: number, info: PacketInfo, t: CompiledTable, target: number, back: number, slot: number, service: number, hopDone: boolean, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const c = this.counters;
    const a = t.a;
    const S = t.serviceCount;
    const start = a.targetStart[target]!;
    const count = a.targetCount[target]!;
    const aux = tx.aux;
    const len = info.totalLen;
    const keep = this.keepDst;
    keep.set(info.dst);
    const hop = info.hopLimit;
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const m = a.members[start + i]!;
      if (m === back || a.up[a.backSlot[m]!] === 0 || a.backAddrFamily[m * S + service] === 0) continue;
      let dup = false;
      for (let j = 0; j < i; j++) if (a.members[start + j] === m) dup = true;
      if (dup) continue;
      // room for the copy and whatever it may become (outer fragments), and the received packet's
      if (aux.free < COPY_RESERVE || aux.headroom + len > aux.slotSize || !this.icmp.allow(this.now)) {
        c[E_REF_COPY_LIMITED]++;
        continue;
      }
      const o = aux.claim() + aux.headroom;
      aux.buf.set(buf.subarray(off, off + len), o);
      const verdict = this.toBack(aux.buf, o, info, t, m, a.backSlot[m]!, service, hopDone, this.noVnet, 0, tx, -1);
      info.dst.set(keep); // the copy's translation rewrote info; the next copy starts from S again
      info.hopLimit = hop;
      if (verdict === VERDICT_QUEUED) sent++;
    }
    c[E_ST_COPIES]++;
    c[E_COPIES] += sent;
    return this.toBack(buf, off, info, t, back, slot, service, hopDone, vnet, vnetOff, tx, -1);
  }

  private encap(buf: Uint8Array, off: number, info: PacketInfo, fam: number, slot: number, hopDone: boolean, vnet: Uint8Array, vnetOff: number, tx: TxQueue, entry: number): number {
    const s = this.outerSrc;
    const configured = fam === 4 ? this.src4 : this.src6;
    if (configured !== null) s.set(configured);
    else if (info.version === fam) s.set(info.dst); // "service": the draft's outer source = S
    else return this.drop(D_NO_ROUTE); // validation requires source4/source6 for mixed families
    const tm = this.tmtu;
    const hdr = tm.outerLen(fam); // IP-in-IP or IP-in-UDP (encap.udpPort)
    // Tunnel MTU (tunnel-mtu.ts): decided on the unmodified packet (an ICMP error quotes it)
    const fit = tm.check(buf, off, info, fam, slot, vnet, vnetOff, tx);
    if (fit === MTU_DROPPED) return dropVerdict(D_TOO_BIG);
    // Recorded before any header is touched (as a quote shows it); a pinned flow's packet only when
    // its stamp changed since the flow's last one (a new period or tunnel): the keyed hash per
    // packet cost encap about a fifth of its time.
    if (entry < 0) this.sent.mark(slot, buf, off, info.totalLen, this.now);
    else {
      const st = this.sent.stamp(slot, buf, off, this.now);
      const tags = this.flows.table.tag;
      if (tags[entry] !== st) {
        this.sent.mark(slot, buf, off, info.totalLen, this.now);
        tags[entry] = st;
      }
    }
    if (!hopDone) decrementHopLimit(buf, off, info); // > 1 checked by balance()
    if (TunnelOffload.isGso(vnet, vnetOff)) {
      // a TCP burst into a UDP tunnel whose segments fit: one super-packet for the kernel to segment
      // (the tunnel TAP); segments to be fragmented keep the own cut
      if (fit === MTU_FIT) {
        const v = this.tunnel.wrapUdpGso(tx, buf, off, info, vnet, vnetOff, fam, s, this.backAddr, this.outerHopLimit, tm);
        if (v !== TAP_NOT_TAKEN) return v;
      }
      // else cut into wire segments natively, each wrapped or fragmented (tunnel-offload.ts)
      return this.tunnel.wrapSegments(tx, buf, off, info.totalLen, vnet, vnetOff, fam, s, this.backAddr, this.outerHopLimit, tm, this.role.lbspType, fit);
    }
    if (info.totalLen + hdr > 65535) return this.drop(D_TOO_BIG);
    if (!this.tunnel.finish(buf, off, info.totalLen, vnet, vnetOff, info.hdrLen)) return this.drop(D_MALFORMED); // csum_start/offset outside the packet
    if (fit === MTU_FRAG_INNER) return tm.wrapFragments(buf, off, info, fam, s, this.backAddr, this.outerHopLimit, tx) ? VERDICT_QUEUED : dropVerdict(D_TOO_BIG);
    const o = tm.wrap(buf, off, info, fam, s, this.backAddr, this.outerHopLimit);
    if (fit === MTU_FRAG_OUTER) return tm.fragmentOuter(buf, o, info.totalLen + hdr, fam, tx) ? VERDICT_QUEUED : dropVerdict(D_TOO_BIG);
    if (vnet.length > 0) shiftVnetHeader(vnet, vnetOff / 12, off - o);
    tx.forward(buf, o, info.totalLen + hdr, vnet, vnetOff);
    return VERDICT_QUEUED;
  }
}
