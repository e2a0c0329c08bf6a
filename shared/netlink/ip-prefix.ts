// Address and prefix strings to the byte form rtnetlink wants (network order). Control plane only.
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

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

function v4Bytes(s: string): Buffer {
  return Buffer.from(s.split('.').map((p) => Number(p)));
}

/** Parse an IPv4 or IPv6 address (zone ids are refused). Throws on anything else. */
export function parseIp(s: string): IpAddress {
  if (isIPv4(s)) return { family: 4, bytes: v4Bytes(s) };
  if (!isIPv6(s) || s.includes('%')) throw new Error(`not an IP address: ${JSON.stringify(s)}`);
  const out = Buffer.alloc(16);
  let text = s;
  // A dotted quad tail (::ffff:192.0.2.1) becomes two hex groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = v4Bytes(tail);
    text = `${text.slice(0, lastColon + 1)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const hg = head ? head.split(':') : [];
  const tg = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? hg : [...hg, ...Array<string>(8 - hg.length - tg.length).fill('0'), ...tg];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(parseInt(groups[i], 16), 2 * i);
  return { family: 6, bytes: out };
}

/** Parse "addr/len" (or a bare address: /32 or /128). Host bits are kept (addresses need them). */
export function parsePrefix(s: string): IpPrefix {
  const slash = s.indexOf('/');
  const addr = parseIp(slash < 0 ? s : s.slice(0, slash));
  const max = addr.family === 4 ? 32 : 128;
  if (slash < 0) return { ...addr, len: max };
  const lenText = s.slice(slash + 1);
  const len = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || len > max) throw new Error(`bad prefix length in ${JSON.stringify(s)}`);
  return { ...addr, len };
}

/** The prefix with its host bits cleared (what the kernel wants for routes and rules). */
export function networkOf(p: IpPrefix): IpPrefix {
  const bytes = Buffer.from(p.bytes);
  for (let bit = p.len; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family: p.family, bytes, len: p.len };
}

/** Text form of an address's bytes (for messages and logs). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // Compress the longest run of zero groups (RFC 5952), length >= 2.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}
