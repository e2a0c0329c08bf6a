// Bounded reassembly of IPv4 and IPv6 fragments, for tunnel endpoints only: a back (or a second-
// stage front) receives the outer fragments of a tunnel packet the entry point fragmented (RFC 2473
// section 7.1: an inner IPv6 packet of at most 1280 bytes over a smaller tunnel MTU) or that an
// IPv4 router fragmented on the way (outer DF clear). RFC 4459 / RFC 8900: reassembly at a tunnel
// endpoint is a resource an attacker can exhaust, so everything here is fixed at construction:
// a few slots, a largest datagram, a short timeout; the oldest datagram is evicted when all slots
// are busy. Overlapping fragments drop their datagram (RFC 5722). Allocation free per packet.
import { PacketInfo } from './packet-info.js';
import { Proto } from './constants.js';
import { writeIpv4HeaderChecksum } from './checksum.js';

export const REASM_DROP = -1;
export const REASM_STORED = 0;
export const REASM_COMPLETE = 1;

/** Room kept in each slot for the unfragmentable part (IPv4 header with options, IPv6 headers). */
const HDR_ROOM = 128;
/** Most extension headers walked before the Fragment header. */
const MAX_WALK = 8;

export interface ReassemblerOptions {
  /** Datagrams in progress at once (default 16). */
  slots?: number;
  /** Largest reassembled datagram in bytes, headers included (default 2048). */
  maxDatagram?: number;
  /** A datagram not complete after this long is dropped (default 5000 ms). */
  timeoutMs?: number;
}

export class Reassembler {
  /** After REASM_COMPLETE: the datagram is at buf[outOff, outOff + outLen) until the next add(). */
  readonly buf: Uint8Array;
  outOff = 0;
  outLen = 0;
  /** Datagrams dropped: evicted for room, timed out, overlapping or too big. For the caller's counters. */
  evicted = 0;
  timedOut = 0;
  rejected = 0;
  readonly slots: number;
  readonly maxDatagram: number;
  private readonly slotSize: number;
  private readonly maxPayload: number;
  private readonly timeoutMs: number;
  private readonly used: Uint8Array;
  private readonly ver: Uint8Array;
  private readonly key: Uint32Array; // slot * 8: src x4, dst x4
  private readonly id: Uint32Array;
  private readonly proto: Uint8Array;
  private readonly deadline: Float64Array;
  /** Unfragmentable part length once the first fragment arrived (0 before). */
  private readonly hdrLen: Int32Array;
  /** Payload length once the last fragment arrived (-1 before). */
  private readonly total: Int32Array;
  private readonly received: Int32Array;
  /** One byte per 8-byte block of payload: 1 when received. */
  private readonly blocks: Uint8Array;
  private readonly blocksPerSlot: number;

  constructor(o: ReassemblerOptions = {}) {
    this.slots = o.slots ?? 16;
    this.maxDatagram = o.maxDatagram ?? 2048;
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.maxPayload = this.maxDatagram;
    this.slotSize = HDR_ROOM + this.maxPayload;
    this.buf = new Uint8Array(this.slots * this.slotSize);
    this.used = new Uint8Array(this.slots);
    this.ver = new Uint8Array(this.slots);
    this.key = new Uint32Array(this.slots * 8);
    this.id = new Uint32Array(this.slots);
    this.proto = new Uint8Array(this.slots);
    this.deadline = new Float64Array(this.slots);
    this.hdrLen = new Int32Array(this.slots);
    this.total = new Int32Array(this.slots);
    this.received = new Int32Array(this.slots);
    this.blocksPerSlot = (this.maxPayload + 7) >> 3;
    this.blocks = new Uint8Array(this.slots * this.blocksPerSlot);
  }

  /** Datagrams in progress (for tests). */
  get inProgress(): number {
    let n = 0;
    for (let i = 0; i < this.slots; i++) if (this.used[i] !== 0) n++;
    return n;
  }

  private free(s: number): void {
    this.used[s] = 0;
  }

  private find(info: PacketInfo, nowMs: number): number {
    const w = info.version === 4 ? 1 : 4;
    let empty = -1;
    let oldest = -1;
    for (let s = 0; s < this.slots; s++) {
      if (this.used[s] !== 0 && this.deadline[s] <= nowMs) {
        this.free(s);
        this.timedOut++;
      }
      if (this.used[s] === 0) {
        if (empty < 0) empty = s;
        continue;
      }
      if (oldest < 0 || this.deadline[s] < this.deadline[oldest]) oldest = s;
      if (this.ver[s] !== info.version || this.id[s] !== info.fragId >>> 0) continue;
      if (info.version === 4 && this.proto[s] !== info.proto) continue;
      const k = s * 8;
      let same = true;
      for (let i = 0; i < w; i++) {
        if (this.key[k + i] !== info.src[i] || this.key[k + 4 + i] !== info.dst[i]) {
          same = false;
          break;
        }
      }
      if (same) return s;
    }
    let s = empty;
    if (s < 0) {
      s = oldest;
      this.evicted++;
    }
    this.used[s] = 1;
    this.ver[s] = info.version;
    this.id[s] = info.fragId >>> 0;
    this.proto[s] = info.proto;
    const k = s * 8;
    for (let i = 0; i < 4; i++) {
      this.key[k + i] = info.src[i];
      this.key[k + 4 + i] = info.dst[i];
    }
    this.deadline[s] = nowMs + this.timeoutMs;
    this.hdrLen[s] = 0;
    this.total[s] = -1;
    this.received[s] = 0;
    this.blocks.fill(0, s * this.blocksPerSlot, (s + 1) * this.blocksPerSlot);
    return s;
  }

  /**
   * Add the parsed fragment at buf[off] (info.isFragment must be true). Returns REASM_COMPLETE
   * (datagram at this.buf[outOff, +outLen), its slot already free), REASM_STORED, or REASM_DROP
   * (this fragment is unusable: a bad layout; its datagram, if any, is dropped).
   */
  add(buf: Uint8Array, off: number, info: PacketInfo, nowMs: number): number {
    let u: number; // unfragmentable part (v4: IHL; v6: up to the Fragment header)
    let nhField = 6;
    if (info.version === 4) {
      u = info.hdrLen;
    } else {
      // Walk to the Fragment header (parsePacket stopped after it or at the upper layer).
      let p = 40;
      let nh = buf[off + 6];
      let n = 0;
      while (nh !== Proto.FRAGMENT) {
        if ((nh !== Proto.HOPOPTS && nh !== Proto.DSTOPTS && nh !== Proto.ROUTING) || ++n > MAX_WALK || p + 2 > info.totalLen) {
          this.rejected++;
          return REASM_DROP;
        }
        nhField = p;
        nh = buf[off + p];
        p += (buf[off + p + 1] + 1) * 8;
      }
      if (p + 8 > info.totalLen) {
        this.rejected++;
        return REASM_DROP;
      }
      u = p;
    }
    const dataStart = info.version === 4 ? u : u + 8;
    const n = info.totalLen - dataStart;
    const fo = info.fragOffset;
    const last = !info.moreFragments;
    // Every fragment but the last carries a multiple of 8 bytes; nothing beyond the limit; no empty ones.
    if (u > HDR_ROOM || n <= 0 || (!last && (n & 7) !== 0) || fo + n > this.maxPayload) {
      this.rejected++;
      return REASM_DROP;
    }
    const s = this.find(info, nowMs);
    const base = s * this.slotSize;
    if (last) {
      if (this.total[s] >= 0 && this.total[s] !== fo + n) return this.dropSlot(s);
      this.total[s] = fo + n;
    } else if (this.total[s] >= 0 && fo + n > this.total[s]) {
      return this.dropSlot(s);
    }
    // Overlap check (RFC 5722), then mark.
    const b0 = s * this.blocksPerSlot;
    const first = fo >> 3;
    const end = (fo + n + 7) >> 3;
    for (let b = first; b < end; b++) if (this.blocks[b0 + b] !== 0) return this.dropSlot(s);
    for (let b = first; b < end; b++) this.blocks[b0 + b] = 1;
    const d = this.buf;
    const p = base + HDR_ROOM + fo;
    for (let i = 0; i < n; i++) d[p + i] = buf[off + dataStart + i];
    this.received[s] += n;
    if (fo === 0) {
      this.hdrLen[s] = u;
      const h = base + HDR_ROOM - u;
      for (let i = 0; i < u; i++) d[h + i] = buf[off + i];
      if (info.version === 6) d[h + nhField] = buf[off + u]; // the Fragment header's next header
    }
    if (this.total[s] < 0 || this.received[s] !== this.total[s] || this.hdrLen[s] === 0) return REASM_STORED;
    // Complete.
    const hl = this.hdrLen[s];
    const total = this.total[s];
    const h = base + HDR_ROOM - hl;
    if (info.version === 4) {
      const len = hl + total;
      d[h + 2] = len >> 8;
      d[h + 3] = len & 0xff;
      d[h + 6] = 0;
      d[h + 7] = 0;
      writeIpv4HeaderChecksum(d, h);
      this.outLen = len;
    } else {
      const pl = hl - 40 + total;
      d[h + 4] = pl >> 8;
      d[h + 5] = pl & 0xff;
      this.outLen = hl + total;
    }
    this.outOff = h;
    this.free(s);
    return REASM_COMPLETE;
  }

  private dropSlot(s: number): number {
    this.free(s);
    this.rejected++;
    return REASM_DROP;
  }
}
