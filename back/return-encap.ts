// Return encapsulation (draft section 6, Figure 12; SPEC 4 `returnEncap: { gateway }`): where the
// network between back and client filters ingress (BCP 38 drops src = S arriving from the backs'
// side), the back wraps the return packets of its services toward a gateway (a front, or any
// decapsulator with the back's prefix in its acceptTunnelFrom) with its own address B as the outer
// source, which the filters accept. The gateway unwraps and forwards the inner packet (src S).
// Return packets reach the TUN through the returnPath policy routing (back/main.ts); LBSP stamping,
// when on, happens before the wrap.
// Tunnel MTU (shared/tunnel/tunnel-mtu.ts) with the path MTU toward the gateway (the route's, read
// at start-up): a server's packet that does not fit gets Packet Too Big / Fragmentation Needed from
// B (the server's stack lowers its path MTU toward the client), IPv4 without DF is fragmented before
// wrapping, IPv6 of at most 1280 bytes is carried in outer fragments (the gateway reassembles); a
// GSO super-packet is cut into its segments first and each is handled so (tunnel-offload.ts).
import type { TxQueue } from '../shared/engine/tx-queue.js';
import { VERDICT_QUEUED, dropVerdict } from '../shared/engine/packet-processor.js';
import { IcmpEmitter } from '../shared/tunnel/icmp-emitter.js';
import { TunnelMtu, MTU_DROPPED, MTU_FRAG_INNER, MTU_FRAG_OUTER } from '../shared/tunnel/tunnel-mtu.js';
import { PmtuCache } from '../shared/tunnel/path-mtu-cache.js';
import { TunnelOffload } from '../shared/tunnel/tunnel-offload.js';
import { PacketInfo } from '../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../shared/packet/parse.js';
import { encapsulate, OUTER_HDR_LEN4, OUTER_HDR_LEN6 } from '../shared/packet/encap.js';
import { shiftVnetHeader, vnetSegments } from '../shared/tun/vnet-header.js';
import { dropIndex, eventIndex } from '../shared/metrics/counter-layout.js';
import { IcmpErrorInfo, parseIcmpError } from '../shared/packet/icmp.js';
import { Proto } from '../shared/packet/constants.js';
import { get32 } from '../shared/packet/bytes.js';

export interface ReturnEncapRole {
  /** The gateway (outer destination) and its family. */
  gateway: number[];
  family: 4 | 6;
  /** Outer source: this back's own address B of the gateway's family. */
  source: number[];
  /** Path MTU toward the gateway (the route's, read at start-up; the TUN MTU until then). */
  mtu: number;
  /** Outer hop limit on the wire. */
  hopLimit: number;
  /** Source of the ICMP errors to the servers, per family: an own address B (null: none of that family). */
  icmpSource4: number[] | null;
  icmpSource6: number[] | null;
  /** This worker's share of the ICMP token bucket. */
  icmp: { ratePerSecond: number; burst: number };
}

const D_MALFORMED = dropIndex('malformed');
const D_TOO_BIG = dropIndex('too_big');
const E_RETURN_ENCAP = eventIndex('return_encapsulated');

export class ReturnEncap {
  private readonly info = new PacketInfo();
  private readonly gw: Uint32Array;
  private readonly src: Uint32Array;
  private readonly fam: 4 | 6;
  private readonly hdr: number;
  /** The kernel forwards what we write and decrements the outer hop limit once: write one more. */
  private readonly outerHop: number;
  private readonly tmtu: TunnelMtu;
  private readonly offload: TunnelOffload;
  private readonly err = new IcmpErrorInfo();
  private readonly inner = new PacketInfo();

  constructor(
    r: ReturnEncapRole,
    private readonly counters: Float64Array,
    nowMs: number,
    private readonly lbspType: number,
  ) {
    this.gw = Uint32Array.from(r.gateway);
    this.src = Uint32Array.from(r.source);
    this.fam = r.family;
    this.hdr = r.family === 4 ? OUTER_HDR_LEN4 : OUTER_HDR_LEN6;
    this.outerHop = Math.min(255, r.hopLimit + 1);
    const icmp = new IcmpEmitter(
      counters,
      r.icmp.ratePerSecond,
      r.icmp.burst,
      nowMs,
      r.icmpSource4 ? Uint32Array.from(r.icmpSource4) : null,
      r.icmpSource6 ? Uint32Array.from(r.icmpSource6) : null,
    );
    // one tunnel (slot 0) whose path MTU is the route's toward the gateway, never learned
    this.tmtu = new TunnelMtu(PmtuCache.create(r.mtu, 1), icmp, counters, (nowMs & 0xffff) + 7);
    this.tmtu.nowMs = nowMs;
    this.offload = new TunnelOffload(counters);
  }

  set nowMs(ms: number) {
    this.tmtu.nowMs = ms;
  }

  /**
   * Wrap the return packet at buf[off, off+len) (from a service, possibly just stamped) toward the
   * gateway and queue it (or its fragments / segments). Returns the verdict.
   */
  wrap(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const info = this.info;
    const c = this.counters;
    if (parsePacket(buf, off, len, info, this.lbspType) !== ParseError.OK) return this.drop(D_MALFORMED);
    const fam = this.fam;
    const hdr = this.hdr;
    const tm = this.tmtu;
    const fit = tm.check(buf, off, info, fam, 0, vnet, vnetOff, tx);
    if (fit === MTU_DROPPED) return dropVerdict(D_TOO_BIG);
    c[E_RETURN_ENCAP] += vnet.length > 0 ? vnetSegments(vnet, vnetOff / 12) : 1; // wire packets
    if (TunnelOffload.isGso(vnet, vnetOff)) {
      return this.offload.wrapSegments(tx, buf, off, info.totalLen, vnet, vnetOff, fam, this.src, this.gw, this.outerHop, tm, this.lbspType, fit);
    }
    if (info.totalLen + hdr > 65535) return this.drop(D_TOO_BIG);
    if (!this.offload.finish(buf, off, info.totalLen, vnet, vnetOff, info.hdrLen)) return this.drop(D_MALFORMED);
    if (fit === MTU_FRAG_INNER) return tm.wrapFragments(buf, off, info, fam, this.src, this.gw, this.outerHop, tx) ? VERDICT_QUEUED : dropVerdict(D_TOO_BIG);
    const o = encapsulate(buf, off, info, fam, this.src, this.gw, this.outerHop, tm.nextIpId());
    if (fit === MTU_FRAG_OUTER) return tm.fragmentOuter(buf, o, info.totalLen + hdr, fam, tx) ? VERDICT_QUEUED : dropVerdict(D_TOO_BIG);
    if (vnet.length > 0) shiftVnetHeader(vnet, vnetOff / 12, off - o);
    tx.forward(buf, o, info.totalLen + hdr, vnet, vnetOff);
    return VERDICT_QUEUED;
  }

  /**
   * An ICMP error addressed to this back (parsed into info): is it about one of our return tunnel
   * packets — quoted outer source our B, outer destination the gateway, protocol 4 / 41 (maybe
   * behind the Fragment header we add)? Then Packet Too Big / Fragmentation Needed lowers the path
   * MTU toward the gateway (it ages out as the front's does) and is relayed to the server that sent
   * the inner packet (from B, as the errors check() sends); other errors about the tunnel are taken
   * in. Returns false when the error is not about our tunnel (the caller handles it as before).
   */
  fabricError(buf: Uint8Array, off: number, info: PacketInfo, tx: TxQueue): boolean {
    const e = this.err;
    if (!parseIcmpError(buf, off, info, e)) return false;
    const fam = this.fam;
    if (e.innerVersion !== fam) return false;
    const s = this.src, g = this.gw, is = e.innerSrc, id = e.innerDst;
    if (is[0] !== s[0] || id[0] !== g[0]) return false;
    if (fam === 6 && (is[1] !== s[1] || is[2] !== s[2] || is[3] !== s[3] || id[1] !== g[1] || id[2] !== g[2] || id[3] !== g[3])) return false;
    const q = e.innerOff;
    const qlen = e.innerLen;
    let proto = e.innerProto;
    let ohl: number;
    let nonFirst = false;
    if (fam === 4) {
      ohl = (buf[q]! & 15) * 4;
      if (ohl < 20 || ohl > qlen) return false;
      nonFirst = (((buf[q + 6]! & 0x1f) << 8) | buf[q + 7]!) !== 0;
    } else {
      ohl = 40;
      if (proto === Proto.FRAGMENT) {
        if (qlen < 48) return false;
        proto = buf[q + 40]!;
        nonFirst = (((buf[q + 42]! << 8) | buf[q + 43]!) & 0xfff8) !== 0;
        ohl = 48;
      }
    }
    if (proto !== Proto.IPIP && proto !== Proto.IPV6) return false;
    const tooBig = (fam === 6 && e.type === 2) || (fam === 4 && e.type === 3 && e.code === 4);
    if (!tooBig) return true;
    const tmtu = this.tmtu.learn(0, fam, e.mtu, (buf[q + 2]! << 8) | buf[q + 3]!);
    if (nonFirst) return true;
    // relay to the server, quoting what the router quoted of its packet
    const p = q + ohl;
    const avail = qlen - ohl;
    const iv = avail > 0 ? buf[p]! >> 4 : 0;
    const inner = this.inner;
    inner.reset();
    let size: number;
    if (iv === 4 && proto === Proto.IPIP && avail >= 20) {
      inner.version = 4;
      inner.hdrLen = (buf[p]! & 15) * 4;
      size = (buf[p + 2]! << 8) | buf[p + 3]!;
      const ff = (buf[p + 6]! << 8) | buf[p + 7]!;
      inner.df = (ff & 0x4000) !== 0;
      inner.fragOffset = (ff & 0x1fff) * 8;
      inner.proto = buf[p + 9]!;
      inner.src[0] = get32(buf, p + 12);
      inner.dst[0] = get32(buf, p + 16);
      if (inner.proto === Proto.ICMP && inner.hdrLen >= 20 && avail > inner.hdrLen) inner.icmpType = buf[p + inner.hdrLen]!;
    } else if (iv === 6 && proto === Proto.IPV6 && avail >= 40) {
      inner.version = 6;
      size = 40 + ((buf[p + 4]! << 8) | buf[p + 5]!);
      inner.proto = buf[p + 6]!;
      for (let i = 0; i < 4; i++) {
        inner.src[i] = get32(buf, p + 8 + 4 * i);
        inner.dst[i] = get32(buf, p + 24 + 4 * i);
      }
      if (inner.proto === Proto.ICMPV6 && avail > 40) inner.icmpType = buf[p + 40]!;
    } else {
      return true;
    }
    inner.totalLen = size < avail ? size : avail;
    this.tmtu.relay(tx, buf, p, inner, size, tmtu);
    return true;
  }

  private drop(reason: number): number {
    this.counters[reason]++;
    return dropVerdict(reason);
  }
}
