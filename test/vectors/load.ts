// Test-side helpers for the scapy vectors (not used by the codec).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

export function loadVectors<T>(name: string): T {
  return JSON.parse(readFileSync(join(HERE, name), 'utf8')) as T;
}

export const HEADROOM = 128;

/** Copy hex into a fresh slab at offset HEADROOM (with slack after), return [buf, off, len]. */
export function slab(hex: string, tail = 64): [Uint8Array, number, number] {
  const b = Buffer.from(hex, 'hex');
  const buf = new Uint8Array(HEADROOM + b.length + tail);
  buf.fill(0xa5); // poison: a codec reading outside the packet sees garbage, not zeros
  buf.set(b, HEADROOM);
  return [buf, HEADROOM, b.length];
}

export function hexOf(buf: Uint8Array, off: number, len: number): string {
  return Buffer.from(buf.subarray(off, off + len)).toString('hex');
}

/** Address text -> Uint32Array(4) words (IPv4 in word 0). */
export function words(addr: string): Uint32Array {
  const w = new Uint32Array(4);
  if (addr.includes('.') && !addr.includes(':')) {
    const p = addr.split('.').map(Number);
    w[0] = ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
    return w;
  }
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const hs = head ? head.split(':') : [];
  const ts = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts].map((g) => parseInt(g, 16));
  for (let i = 0; i < 4; i++) w[i] = ((groups[2 * i] << 16) | groups[2 * i + 1]) >>> 0;
  return w;
}
