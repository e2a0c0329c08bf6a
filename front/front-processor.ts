// MSLB-F per-packet logic: parse, pick a back for packets to a service (front/decision.ts), then
// rewrite the destination (translate) or wrap the packet toward the back (encap). Every drop is
// counted by reason. The compiled table arrives from the main thread and is swapped in whole.
import type { AuxBatch } from '../shared/engine/packet-processor.js';
import { VERDICT_DROP } from '../shared/engine/packet-processor.js';
import type { RoleProcessor } from '../shared/engine/worker-runtime.js';
import type { ToWorker } from '../shared/engine/worker-messages.js';
import { PacketInfo } from '../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../shared/packet/parse.js';
import { isMulticastDst } from '../shared/packet/address-class.js';
import { rewriteDst } from '../shared/packet/translate.js';
import { addrDelta } from '../shared/packet/checksum.js';
import { encapsulate, OUTER_HDR_LEN4, OUTER_HDR_LEN6 } from '../shared/packet/encap.js';
import { readLbspClient, readLbspServer } from '../shared/packet/lbsp.js';
import { CompiledTable, MODE_ENCAP, type CompiledTableTransfer } from '../shared/table/compiled-table.js';
import { VIRTIO_NET_HDR_F_NEEDS_CSUM, shiftVnetHeader, vnetSegments } from '../shared/tun/vnet-header.js';
import { TunnelOffload, TUNNEL_DROP_TOO_BIG } from '../shared/engine/tunnel-offload.js';
import { backendPacketsIndex, decisionIndex, dropIndex, eventIndex } from '../shared/metrics/counter-layout.js';
import {
  decide,
  DecisionInput,
  DecisionResult,
  REASON_BACKEND_DOWN,
  REASON_FLOW_LABEL,
  REASON_LBSP_SERVER,
  REASON_NO_ROUTE,
  REASON_NOT_SERVICE,
  REASON_SOURCE_PREFIX,
} from './decision.js';
import type { FrontRole } from './front-role.js';
import { FlowPinning } from './flow-pinning.js';

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
const E_LBSP_BAD_LEN = eventIndex('lbsp_ignored_bad_length');
const E_LBSP_UNKNOWN = eventIndex('lbsp_ignored_unknown_server');

export class FrontProcessor implements RoleProcessor {
  outLen = 0;
  private readonly info = new PacketInfo();
  private readonly input = new DecisionInput();
  private readonly result = new DecisionResult();
  private readonly backAddr = new Uint32Array(4);
  private readonly outerSrc = new Uint32Array(4);
  private readonly src4: Uint32Array | null;
  private readonly src6: Uint32Array | null;
  private table: CompiledTable | null = null;
  private ipId = 1;
  /** GSO split + checksum completion before the outer header (offloads on). */
  private readonly tunnel = new TunnelOffload();
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
    /** Flow-table clock in ms (tests pass a fake one). */
    clock: () => number = Date.now,
  ) {
    this.src4 = role.encapSource4 ? Uint32Array.from(role.encapSource4) : null;
    this.src6 = role.encapSource6 ? Uint32Array.from(role.encapSource6) : null;
    this.outerHopLimit = Math.min(255, role.hopLimit + 1);
    this.flows = new FlowPinning(role.flowTable ?? DEFAULT_FLOW_TABLE, counters, clock);
  }

  update(msg: ToWorker): void {
    if (msg.type === 'table') this.setTable(CompiledTable.fromTransfer(msg.table as CompiledTableTransfer));
  }

  /** For tests and the in-process path: install a compiled table directly. */
  setTable(t: CompiledTable): void {
    this.table = t;
    this.flows.setTable(t); // pinned flows re-resolve their back by slot (name) into this table
  }

  endBatch(nowMs: number): void {
    this.flows.endBatch(nowMs);
  }

  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, _aux: AuxBatch): number {
    const info = this.info;
    const c = this.counters;
    const err = parsePacket(buf, off, len, info, this.role.lbspType);
    if (err !== ParseError.OK) {
      c[D_MALFORMED]++; // SPEC 5: bad version and every other parse failure
      return VERDICT_DROP;
    }
    if (isMulticastDst(info)) {
      c[E_MULTICAST]++; // the host's own MLD reports: no service is multicast
      return VERDICT_DROP;
    }
    const t = this.table;
    if (t === null) {
      c[D_NO_ROUTE]++;
      return VERDICT_DROP;
    }
    const v = info.version;
    const r = this.result;
    const flows = this.flows;
    if (info.lbspStatus === 2) c[E_LBSP_BAD_LEN]++;
    if (flows.lookup(info)) {
      // SPEC 2 step 5: a pinned flow keeps its back (reason flow_table, counted by lookup)
      r.back = flows.back; r.slot = flows.slot; r.service = flows.service;
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
      if (r.lbspIgnored) c[E_LBSP_UNKNOWN]++;
      if (r.back < 0) {
        c[reason === REASON_NOT_SERVICE ? D_NOT_SERVICE : reason === REASON_BACKEND_DOWN ? D_BACKEND_DOWN : D_NO_ROUTE]++;
        return VERDICT_DROP;
      }
      c[reason === REASON_LBSP_SERVER ? DEC_LBSP : reason === REASON_FLOW_LABEL ? DEC_LABEL : DEC_PREFIX]++;
      flows.remember(info, r.back, r.slot);
    }
    const b = this.backAddr;
    const fam = t.backAddress(r.back, r.service, b);
    c[backendPacketsIndex(r.slot)] += vnet.length > 0 ? vnetSegments(vnet, vnetOff / 12) : 1; // wire packets (SPEC 8)
    c[backendPacketsIndex(r.slot) + 1] += info.totalLen;
    if (t.a.backMode[r.back] === MODE_ENCAP) return this.encap(buf, off, fam, vnet, vnetOff, _aux);
    // translate: same family is guaranteed by table validation
    const partial = vnet.length > 0 && (vnet[vnetOff] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    rewriteDst(buf, off, info, b, addrDelta(info.dst, b, v === 4 ? 1 : 4), partial);
    this.outLen = info.totalLen;
    return off;
  }

  private encap(buf: Uint8Array, off: number, fam: number, vnet: Uint8Array, vnetOff: number, aux: AuxBatch): number {
    const info = this.info;
    const s = this.outerSrc;
    const configured = fam === 4 ? this.src4 : this.src6;
    if (configured !== null) s.set(configured);
    else if (info.version === fam) s.set(info.dst); // "service": the draft's outer source = S
    else {
      // validation requires source4/source6 for mixed families; never reached with a valid config
      this.counters[D_NO_ROUTE]++;
      return VERDICT_DROP;
    }
    const hdr = fam === 4 ? OUTER_HDR_LEN4 : OUTER_HDR_LEN6;
    if (TunnelOffload.isGso(vnet, vnetOff)) return this.encapGso(buf, off, fam, vnet, vnetOff, aux);
    if (info.totalLen + hdr > 65535) {
      this.counters[D_TOO_BIG]++;
      return VERDICT_DROP;
    }
    if (!this.tunnel.finish(aux, buf, off, info.totalLen, vnet, vnetOff)) {
      this.counters[D_MALFORMED]++; // csum_start/offset outside the packet
      return VERDICT_DROP;
    }
    this.ipId = (this.ipId + 1) & 0xffff;
    const o = encapsulate(buf, off, info, fam, s, this.backAddr, this.outerHopLimit, this.ipId);
    if (vnet.length > 0) shiftVnetHeader(vnet, vnetOff / 12, off - o);
    this.outLen = info.totalLen + hdr;
    return o;
  }

  /** GSO super-packet into a tunnel: cut into wire segments natively, wrap each (tunnel-offload.ts). */
  private encapGso(buf: Uint8Array, off: number, fam: number, vnet: Uint8Array, vnetOff: number, aux: AuxBatch): number {
    const tun = this.tunnel;
    const v = tun.wrapSegments(aux, buf, off, this.info.totalLen, vnet, vnetOff, fam, this.outerSrc, this.backAddr, this.outerHopLimit, this.ipId, this.role.lbspType);
    if (v === VERDICT_DROP) this.counters[tun.dropReason === TUNNEL_DROP_TOO_BIG ? D_TOO_BIG : D_MALFORMED]++;
    else this.ipId = tun.ipId;
    return v;
  }
}


