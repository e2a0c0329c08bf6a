// Addresses and prefixes in the byte form rtnetlink wants (network order). Text is parsed and
// written by shared/table/addr.ts, the one address parser; this only converts its words to bytes
// and back. Control plane only.
import { formatAddress, parseAddress, type Family, type ParsedPrefix } from '../table/addr.js';

export type IpFamily = Family;

export interface IpAddress {
  family: IpFamily;
  bytes: Buffer; // 4 or 16 bytes
}

export interface IpPrefix extends IpAddress {
  len: number;
}

export const AF_INET = 2;
export const AF_INET6 = 10;

export function afOf(family: IpFamily): number {
  return family === 4 ? AF_INET : AF_INET6;
}

function bytesOf(family: IpFamily, words: Uint32Array): Buffer {
  const out = Buffer.alloc(family === 4 ? 4 : 16);
  for (let i = 0; i < out.length / 4; i++) out.writeUInt32BE(words[i]!, 4 * i);
  return out;
}

/** Parse an IPv4 or IPv6 address (zone ids are refused). Throws on anything else. */
export function parseIp(s: string): IpAddress {
  const a = parseAddress(s);
  if (!a) throw new Error(`not an IP address: ${JSON.stringify(s)}`);
  return { family: a.family, bytes: bytesOf(a.family, a.words) };
}

/** A parsed prefix as bytes. Host bits are kept (an interface address needs them). */
export function prefixBytes(p: ParsedPrefix): IpPrefix {
  return { family: p.family, bytes: bytesOf(p.family, p.words), len: p.len };
}

/** The prefix with its host bits cleared (what the kernel wants for routes and rules). */
export function networkOf(p: IpPrefix): IpPrefix {
  const bytes = Buffer.from(p.bytes);
  for (let bit = p.len; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family: p.family, bytes, len: p.len };
}

/** Text form of an address's 4 or 16 bytes (for messages and logs). */
export function formatIp(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = new Uint32Array(4);
  for (let i = 0; i < b.length / 4; i++) words[i] = b.readUInt32BE(4 * i);
  return formatAddress(b.length === 4 ? 4 : 6, words);
}
