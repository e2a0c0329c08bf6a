// ICMP errors from the fabric about the front's own tunnel packets (SPEC 3 "Tunnel MTU", RFC 2473
// section 8, RFC 2003 section 4). They are addressed to the outer source of the tunnel packet: the
// service address S (encap.source: service), routed into the front's TUN, or a configured outer
// source, which the front's tun.routes must then route into the TUN as well.
// Sanity checks against forged errors (RFC 5927): the quoted packet must be a tunnel packet this
// front sends — outer source one of ours (the configured encap source of that family, or a service
// address), outer destination a configured back in encap mode, protocol 4 or 41 (IPv6: maybe behind
// the Fragment header the front adds when it fragments the outer packet), or UDP to encap.udpPort
// with an IP packet behind the UDP header. Then:
//   Packet Too Big / Fragmentation Needed -> that back's path MTU is lowered and the error relayed
//     to the inner source (shared/tunnel/tunnel-mtu.ts: learn, relay); this file only decides
//     whether an error is about our tunnels and which back it names.
//   any other error about our tunnels is consumed without relaying (counted nowhere else).
// Anything that does not pass is NOT_OURS: the caller forwards it as ordinary traffic when it is
// addressed to a service, and drops it as malformed otherwise (SPEC 5).
import type { TxQueue } from '../shared/engine/tx-queue.js';
import { PacketInfo } from '../shared/packet/packet-info.js';
import { IcmpErrorInfo, parseIcmpError } from '../shared/packet/icmp.js';
import { Proto } from '../shared/packet/constants.js';
import { CompiledTable, MODE_ENCAP } from './table/compiled-table.js';
import type { TunnelMtu } from '../shared/tunnel/tunnel-mtu.js';
import type { SentFlows } from '../shared/tunnel/sent-flows.js';
import { eventIndex } from '../shared/metrics/counter-layout.js';

const E_PMTU_UNVERIFIED = eventIndex('pmtu_unverified');

export const FABRIC_NOT_OURS = 0;
export const FABRIC_HANDLED = 1;

function get32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

/**
 * Encap back whose address (for any service) equals the words of family fam, or -1. The table's
 * hash finds the first back listing an address; when two backs share it (one per mode, e.g. a
 * second-stage front's translate and encap entries) a scan finds the encap one. Only ICMP errors
 * come here, never the data path.
 */
export function findBackByAddress(t: CompiledTable, fam: number, w: Uint32Array): number {
  const b = fam === 4 ? t.backByLbspServer(0, 0, 0xffff, w[0]) : t.backByLbspServer(w[0], w[1], w[2], w[3]);
  if (b < 0) return -1;
  if (t.a.backMode[b] === MODE_ENCAP && t.backHasAddress(b, fam, w)) return b;
  for (let x = 0; x < t.backCount; x++) if (t.a.backMode[x] === MODE_ENCAP && t.backHasAddress(x, fam, w)) return x;
  return -1;
}

export class FabricIcmp {
  private readonly e = new IcmpErrorInfo();
  private readonly inner = new PacketInfo();

  constructor(
    private readonly mtu: TunnelMtu,
    /** Configured outer source per family (null: the service address is the outer source). */
    private readonly src4: Uint32Array | null,
    private readonly src6: Uint32Array | null,
    /** Inner flows this worker sent per back recently: an error must quote one of them. */
    private readonly sent: SentFlows,
    /** False with an explicit encap.mtu: the operator's figure is not lowered. */
    private readonly learning: boolean,
    private readonly counters: Float64Array,
  ) {}

  private ours(t: CompiledTable, fam: number, w: Uint32Array): boolean {
    const c = fam === 4 ? this.src4 : this.src6;
    if (c !== null) return c[0] === w[0] && (fam === 4 || (c[1] === w[1] && c[2] === w[2] && c[3] === w[3]));
    return t.serviceIndex(fam, w) >= 0;
  }

  /** An ICMP/ICMPv6 packet (parsed into info) addressed to the front: ours to handle or not. */
  handle(buf: Uint8Array, off: number, info: PacketInfo, t: CompiledTable, tx: TxQueue): number {
    const e = this.e;
    if (!parseIcmpError(buf, off, info, e)) return FABRIC_NOT_OURS;
    const q = e.innerOff;
    const qlen = e.innerLen;
    const fam = e.innerVersion;
    let proto = e.innerProto;
    let ohl: number;
    let nonFirst = false;
    if (fam === 4) {
      ohl = (buf[q] & 15) * 4;
      if (ohl < 20 || ohl > qlen) return FABRIC_NOT_OURS;
      nonFirst = (((buf[q + 6] & 0x1f) << 8) | buf[q + 7]) !== 0;
    } else {
      ohl = 40;
      if (proto === Proto.FRAGMENT) {
        if (qlen < 48) return FABRIC_NOT_OURS;
        proto = buf[q + 40];
        nonFirst = ((((buf[q + 42] << 8) | buf[q + 43]) & 0xfff8) !== 0);
        ohl = 48;
      }
    }
    if (proto === Proto.UDP && this.mtu.udpPort !== 0 && !nonFirst && qlen >= ohl + 9 && ((buf[q + ohl + 2] << 8) | buf[q + ohl + 3]) === this.mtu.udpPort) {
      // IP-in-UDP (encap.udpPort): the inner packet follows the UDP header; its version nibble
      // stands for the protocol number IP-in-IP would carry
      const iv = buf[q + ohl + 8] >> 4;
      proto = iv === 4 ? Proto.IPIP : iv === 6 ? Proto.IPV6 : -1;
      ohl += 8;
    }
    if (proto !== Proto.IPIP && proto !== Proto.IPV6) return FABRIC_NOT_OURS;
    if (!this.ours(t, fam, e.innerSrc)) return FABRIC_NOT_OURS;
    const back = findBackByAddress(t, fam, e.innerDst);
    if (back < 0 || t.a.backMode[back] !== MODE_ENCAP) return FABRIC_NOT_OURS;
    const tooBig = (fam === 6 && e.type === 2) || (fam === 4 && e.type === 3 && e.code === 4);
    if (!tooBig) return FABRIC_HANDLED; // e.g. unreachable / time exceeded inside the tunnel: not relayed
    const slot = t.a.backSlot[back];
    // SPEC 3: learned and relayed only when the quoted inner flow is one we sent to that back
    // recently (a non-first outer fragment quotes no inner header: it cannot be checked)
    const p = q + ohl;
    const avail = qlen - ohl;
    if (nonFirst || !this.sent.seen(slot, buf, p, avail, this.mtu.nowMs)) {
      this.counters[E_PMTU_UNVERIFIED]++;
      return FABRIC_HANDLED;
    }
    const quotedLen = fam === 4 ? (buf[q + 2] << 8) | buf[q + 3] : 40 + ((buf[q + 4] << 8) | buf[q + 5]);
    const tmtu = this.learning ? this.mtu.learn(slot, fam, e.mtu, quotedLen) : this.mtu.tunnelMtu(slot, fam);
    // Relay to the inner packet's source, quoting what the error quoted of it.
    const iv = avail > 0 ? buf[p] >> 4 : 0;
    const inner = this.inner;
    inner.reset();
    let size: number;
    if (iv === 4 && proto === Proto.IPIP && avail >= 20) {
      inner.version = 4;
      inner.hdrLen = (buf[p] & 15) * 4;
      size = (buf[p + 2] << 8) | buf[p + 3];
      const ff = (buf[p + 6] << 8) | buf[p + 7];
      inner.df = (ff & 0x4000) !== 0;
      inner.fragOffset = (ff & 0x1fff) * 8;
      inner.proto = buf[p + 9];
      inner.src[0] = get32(buf, p + 12);
      inner.dst[0] = get32(buf, p + 16);
      if (inner.proto === Proto.ICMP && inner.hdrLen >= 20 && avail > inner.hdrLen) inner.icmpType = buf[p + inner.hdrLen];
    } else if (iv === 6 && proto === Proto.IPV6 && avail >= 40) {
      inner.version = 6;
      size = 40 + ((buf[p + 4] << 8) | buf[p + 5]);
      inner.proto = buf[p + 6];
      for (let i = 0; i < 4; i++) {
        inner.src[i] = get32(buf, p + 8 + 4 * i);
        inner.dst[i] = get32(buf, p + 24 + 4 * i);
      }
      if (inner.proto === Proto.ICMPV6 && avail > 40) inner.icmpType = buf[p + 40];
      // (an ICMPv6 behind extension headers keeps icmpType -1: no error is sent about it)
    } else {
      return FABRIC_HANDLED;
    }
    inner.totalLen = size < avail ? size : avail;
    this.mtu.relay(tx, buf, p, inner, size, tmtu);
    return FABRIC_HANDLED;
  }
}
