// ICMP errors a service originates (Packet Too Big, Fragmentation Needed, Time Exceeded), built in
// an aux slot and queued for transmission where the processor decided to send them. The rules:
// - never about an ICMP error, a non-first fragment, or a packet from/to an unspecified, multicast
//   or broadcast address (RFC 1122 3.2.2, RFC 4443 2.4(e): mayGenerateIcmpError);
// - rate-limited by a token bucket per worker (RFC 4443 2.4(f)) and, when given, by a smaller one
//   per source prefix of the offender (source-prefix-buckets.ts), so that one sender flooding
//   oversize packets cannot spend everyone's errors; refusals count icmp_rate_limited;
// - the front sources them from the address the offending packet was sent to: the service address
//   S for a client's packet (S is the front's own address in the draft, and the client routes S
//   toward the front, so its stack, rp_filter included, accepts the error), the inner destination S
//   for an inner packet a front unwrapped or for a relayed fabric error. No second address to
//   configure, and the error always has the family of the packet it is about (mtr/traceroute show
//   S for this hop). A back (return encapsulation) passes its own B address per family instead:
//   its offenders are the servers' return packets, sent to the client's address.
// Quoted as much of the offending packet as fits in 1280 (IPv6) / 576 (IPv4) bytes.
import type { TxQueue } from '../engine/tx-queue.js';
import { TokenBucket } from './icmp-rate-limiter.js';
import { SourcePrefixBuckets } from './source-prefix-buckets.js';
import { PacketInfo } from '../packet/packet-info.js';
import { buildFragNeeded4, buildPacketTooBig6, buildTimeExceeded4, buildTimeExceeded6, mayGenerateIcmpError } from '../packet/icmp.js';
import { eventIndex, icmpIndex } from '../metrics/counter-layout.js';

export const ICMP_TOO_BIG = 0; // PTB (IPv6) or Fragmentation Needed (IPv4), by the packet's family
export const ICMP_TIME_EXCEEDED = 1;

const I_PTB = icmpIndex('packet_too_big');
const I_FN = icmpIndex('frag_needed');
const I_TE = icmpIndex('time_exceeded');
const E_RATE_LIMITED = eventIndex('icmp_rate_limited');

export class IcmpEmitter {
  private readonly bucket: TokenBucket;
  private readonly perSource: SourcePrefixBuckets | null;
  private ipId = 0;

  constructor(
    private readonly counters: Float64Array,
    ratePerSecond: number,
    burst: number,
    nowMs: number,
    /** Fixed error source per family (words); null: the offender's destination (the front). */
    private readonly src4: Uint32Array | null = null,
    private readonly src6: Uint32Array | null = null,
    /** Budget per offender source prefix (null: the global one only). */
    perSource: { ratePerSecond: number; burst: number } | null = null,
  ) {
    this.bucket = new TokenBucket(ratePerSecond, burst, nowMs);
    this.perSource = perSource === null ? null : new SourcePrefixBuckets(perSource.ratePerSecond, perSource.burst, nowMs);
  }

  /**
   * Take one token for an error the service passes on in more than one copy (an error to a service
   * copied to every member of a pool): copies draw on the same budget as the errors it originates.
   * A refusal counts as rate limited.
   */
  allow(nowMs: number): boolean {
    if (this.bucket.take(nowMs)) return true;
    this.counters[E_RATE_LIMITED]++;
    return false;
  }

  /**
   * Queue an error about the packet at buf[off] (parsed into info, unmodified; info.totalLen bytes
   * are there to quote). kind ICMP_TOO_BIG uses `mtu` (PTB: at least 1280). Returns true when queued.
   */
  send(tx: TxQueue, buf: Uint8Array, off: number, info: PacketInfo, kind: number, mtu: number, nowMs: number): boolean {
    if (!mayGenerateIcmpError(info, buf, off)) return false;
    const aux = tx.aux;
    const ps = this.perSource;
    if (aux.free === 0 || (ps !== null && !ps.take(info.version, info.src, nowMs))) {
      this.counters[E_RATE_LIMITED]++;
      return false;
    }
    if (!this.bucket.take(nowMs)) {
      if (ps !== null) ps.refund(); // the prefix's token was not spent
      this.counters[E_RATE_LIMITED]++;
      return false;
    }
    const o = aux.claim();
    const fixed = info.version === 6 ? this.src6 : this.src4;
    const src = fixed !== null ? fixed : info.dst; // see the header
    let n: number;
    const c = this.counters;
    if (info.version === 6) {
      if (kind === ICMP_TOO_BIG) {
        n = buildPacketTooBig6(aux.buf, o, buf, off, info, src, mtu);
        c[I_PTB]++;
      } else {
        n = buildTimeExceeded6(aux.buf, o, buf, off, info, src);
        c[I_TE]++;
      }
    } else {
      this.ipId = (this.ipId + 1) & 0xffff;
      if (kind === ICMP_TOO_BIG) {
        n = buildFragNeeded4(aux.buf, o, buf, off, info, src, mtu, this.ipId);
        c[I_FN]++;
      } else {
        n = buildTimeExceeded4(aux.buf, o, buf, off, info, src, this.ipId);
        c[I_TE]++;
      }
    }
    tx.push(aux.buf, o, n);
    return true;
  }
}
