// A three-slot slab for fuzz targets: the packet sits in the middle slot at HEADROOM, exactly as
// a TUN read leaves it; the neighbouring slots and every byte of the middle slot outside the packet
// hold a poison value. After the code under test ran, `checkWrites` says whether it wrote anywhere
// it may not (outside [slot start, slot end), below the offset it returned, past the packet end).
// Two slabs with different poison values and the same packet make reads outside the packet visible:
// the code must give the same answer on both.
export const SLOT = 2048;
export const HEADROOM = 128;
export const MAX_PACKET = SLOT - HEADROOM;
export const SLOT_START = SLOT;
export const SLOT_END = 2 * SLOT;
export const PACKET_OFF = SLOT + HEADROOM;

export class FuzzFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzFailure';
  }
}

export function fail(msg: string): never {
  throw new FuzzFailure(msg);
}

export class PoisonSlab {
  readonly buf = new Uint8Array(3 * SLOT);
  len = 0;

  constructor(readonly poison: number) {}

  /** Poison everything, copy the packet to PACKET_OFF; returns its length (capped at MAX_PACKET). */
  load(data: Uint8Array, from: number, to: number): number {
    const n = Math.min(to - from, MAX_PACKET);
    this.buf.fill(this.poison);
    this.buf.set(data.subarray(from, from + n), PACKET_OFF);
    this.len = n;
    return n;
  }

  /**
   * Writes allowed: [lowest, PACKET_OFF + len) where lowest = the returned offset when the code
   * prepended a header (moved the start down), else PACKET_OFF. `grown` allows the packet to end
   * later (nothing in mslb appends today, so callers pass 0).
   */
  checkWrites(what: string, lowest: number, grown = 0): void {
    const b = this.buf;
    const p = this.poison;
    const lo = Math.min(lowest, PACKET_OFF);
    const hi = PACKET_OFF + this.len + grown;
    for (let i = 0; i < lo; i++) {
      if (b[i] !== p) fail(`${what}: wrote byte ${i - SLOT_START} relative to the slot start (allowed from ${lo - SLOT_START})`);
    }
    for (let i = hi; i < b.length; i++) {
      if (b[i] !== p) fail(`${what}: wrote byte ${i - PACKET_OFF} past the packet start (packet length ${this.len}${grown ? ` + ${grown}` : ''})`);
    }
  }

  bytes(off: number, len: number): Uint8Array {
    return this.buf.subarray(off, off + len);
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function hex(a: Uint8Array): string {
  return Buffer.from(a).toString('hex');
}

/** Packet offset and length must lie inside the packet's slot. */
export function checkInSlot(what: string, off: number, len: number): void {
  if (!Number.isInteger(off) || !Number.isInteger(len)) fail(`${what}: offset ${off} / length ${len} not integers`);
  if (off < SLOT_START || len <= 0 || off + len > SLOT_END) {
    fail(`${what}: packet [${off - SLOT_START}, ${off - SLOT_START + len}) outside its slot [0, ${SLOT})`);
  }
}
