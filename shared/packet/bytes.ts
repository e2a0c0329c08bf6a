// Network-order (big-endian) 32-bit words in packet bytes: addresses, sequence numbers, fragment
// IDs and option words are all read and written through these. Callers check bounds first.

/** The unsigned 32-bit word at buf[p..p+3]. */
export function get32(buf: Uint8Array, p: number): number {
  return ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
}

/** Write v as 4 bytes at buf[p..p+3]. */
export function put32(buf: Uint8Array, p: number, v: number): void {
  buf[p] = v >>> 24;
  buf[p + 1] = (v >>> 16) & 0xff;
  buf[p + 2] = (v >>> 8) & 0xff;
  buf[p + 3] = v & 0xff;
}
