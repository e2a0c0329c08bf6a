// The probe kinds of a back's `healthCheck` beyond url and servicePort: `udp`, `dns` and `http`,
// each sent to the service through the back (front/health-checker.ts). Parsed here so that the
// table loader only dispatches to it; every error names the entry.
import { DNS_RCODES, DNS_TYPES, dnsNameProblem } from '../dns-message.js';

export interface UdpCheckSpec {
  port: number;
  /** Datagram sent, hex (from `send` text or `sendHex`). */
  sendHex: string;
  /** Bytes the reply must contain, hex; absent = any reply. */
  expectHex?: string;
}

export interface DnsCheckSpec {
  port: number;
  name: string;
  type: number;
  /** Required rcode; absent = NOERROR with at least one answer. */
  rcode?: number;
}

export interface HttpCheckSpec {
  port: number;
  path: string;
  host?: string;
  /** Accepted status ranges, inclusive. */
  status: [number, number][];
  body?: string;
}

export const SERVICE_CHECK_KEYS = ['udp', 'dns', 'http'] as const;
export type ServiceCheckKey = (typeof SERVICE_CHECK_KEYS)[number];

/** A payload over 512 bytes would be fragmented or dropped on some paths: no use for a probe. */
const MAX_PAYLOAD = 512;
const DEFAULT_UDP_PAYLOAD = 'mslb-health\n';

type Err = (entry: string, reason: string) => void;

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function port(v: unknown, entry: string, err: Err): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) { err(entry, 'must be a port, an integer from 1 to 65535'); return undefined; }
  return v;
}

/** text or hex (even count of hex digits) -> hex, within MAX_PAYLOAD. */
function payload(text: unknown, hex: unknown, entry: string, textKey: string, hexKey: string, err: Err): string | undefined | null {
  if (text !== undefined && hex !== undefined) { err(entry, `give ${textKey} or ${hexKey}, not both`); return null; }
  if (text !== undefined) {
    if (typeof text !== 'string' || text.length === 0) { err(`${entry}.${textKey}`, 'must be a non-empty string'); return null; }
    const h = Buffer.from(text, 'utf8').toString('hex');
    if (h.length / 2 > MAX_PAYLOAD) { err(`${entry}.${textKey}`, `longer than ${MAX_PAYLOAD} bytes`); return null; }
    return h;
  }
  if (hex !== undefined) {
    const h = typeof hex === 'string' ? hex.replace(/[\s:]/g, '') : '';
    if (h.length === 0 || h.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(h)) { err(`${entry}.${hexKey}`, `must be hex bytes (e.g. "0d0a" or "0d:0a"), got ${JSON.stringify(hex)}`); return null; }
    if (h.length / 2 > MAX_PAYLOAD) { err(`${entry}.${hexKey}`, `longer than ${MAX_PAYLOAD} bytes`); return null; }
    return h.toLowerCase();
  }
  return undefined;
}

function unknownKeys(v: Record<string, unknown>, keys: readonly string[], entry: string, err: Err): boolean {
  let ok = true;
  for (const k of Object.keys(v)) if (!keys.includes(k)) { err(`${entry}.${k}`, `unknown key (expected ${keys.join(', ')})`); ok = false; }
  return ok;
}

function udpSpec(v: Record<string, unknown>, e: string, err: Err): UdpCheckSpec | undefined {
  let ok = unknownKeys(v, ['port', 'send', 'sendHex', 'expect', 'expectHex'], e, err);
  const p = v.port === undefined ? (err(`${e}.port`, 'is required (the service port to probe)'), undefined) : port(v.port, `${e}.port`, err);
  const send = payload(v.send, v.sendHex, e, 'send', 'sendHex', err);
  const expect = payload(v.expect, v.expectHex, e, 'expect', 'expectHex', err);
  if (p === undefined || send === null || expect === null) ok = false;
  if (!ok) return undefined;
  return { port: p!, sendHex: send ?? Buffer.from(DEFAULT_UDP_PAYLOAD).toString('hex'), ...(expect ? { expectHex: expect } : {}) };
}

function dnsSpec(v: Record<string, unknown>, e: string, err: Err): DnsCheckSpec | undefined {
  let ok = unknownKeys(v, ['port', 'name', 'type', 'rcode'], e, err);
  const p = v.port === undefined ? 53 : port(v.port, `${e}.port`, err);
  if (p === undefined) ok = false;
  let name = '';
  if (typeof v.name !== 'string') { err(`${e}.name`, 'is required: the name to ask for, e.g. www.example.com'); ok = false; }
  else {
    const why = dnsNameProblem(v.name);
    if (why) { err(`${e}.name`, `not a DNS name: ${why}`); ok = false; } else name = v.name;
  }
  let type = DNS_TYPES.A!;
  if (v.type !== undefined) {
    if (typeof v.type === 'string' && DNS_TYPES[v.type.toUpperCase()] !== undefined) type = DNS_TYPES[v.type.toUpperCase()]!;
    else if (typeof v.type === 'number' && Number.isInteger(v.type) && v.type >= 1 && v.type <= 65535) type = v.type;
    else { err(`${e}.type`, `must be ${Object.keys(DNS_TYPES).join(', ')} or a type number 1-65535, got ${JSON.stringify(v.type)}`); ok = false; }
  }
  let rcode: number | undefined;
  if (v.rcode !== undefined) {
    if (typeof v.rcode === 'string' && DNS_RCODES[v.rcode.toUpperCase()] !== undefined) rcode = DNS_RCODES[v.rcode.toUpperCase()];
    else if (typeof v.rcode === 'number' && Number.isInteger(v.rcode) && v.rcode >= 0 && v.rcode <= 15) rcode = v.rcode;
    else { err(`${e}.rcode`, `must be ${Object.keys(DNS_RCODES).join(', ')} or 0-15, got ${JSON.stringify(v.rcode)}`); ok = false; }
  }
  if (!ok) return undefined;
  return { port: p!, name, type, ...(rcode !== undefined ? { rcode } : {}) };
}

/** 200 | [200, 204] | "200-399" -> inclusive ranges. */
function statusRanges(v: unknown): [number, number][] | undefined {
  const code = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 100 && n <= 599;
  if (code(v)) return [[v as number, v as number]];
  if (Array.isArray(v) && v.length > 0 && v.every(code)) return v.map((n: number) => [n, n]);
  if (typeof v === 'string') {
    const m = /^(\d{3})-(\d{3})$/.exec(v.trim());
    if (m && code(Number(m[1])) && code(Number(m[2])) && Number(m[1]) <= Number(m[2])) return [[Number(m[1]), Number(m[2])]];
  }
  return undefined;
}

function httpSpec(v: Record<string, unknown>, e: string, err: Err): HttpCheckSpec | undefined {
  let ok = unknownKeys(v, ['port', 'path', 'host', 'status', 'body'], e, err);
  const p = v.port === undefined ? 80 : port(v.port, `${e}.port`, err);
  if (p === undefined) ok = false;
  let path = '/';
  if (v.path !== undefined) {
    if (typeof v.path !== 'string' || !v.path.startsWith('/') || /[\s\0]/.test(v.path)) { err(`${e}.path`, `must start with / and have no spaces, got ${JSON.stringify(v.path)}`); ok = false; }
    else path = v.path;
  }
  if (v.host !== undefined && (typeof v.host !== 'string' || !/^[A-Za-z0-9.:[\]_-]{1,255}$/.test(v.host))) { err(`${e}.host`, `must be a host name for the Host header, got ${JSON.stringify(v.host)}`); ok = false; }
  let status: [number, number][] = [[200, 399]];
  if (v.status !== undefined) {
    const r = statusRanges(v.status);
    if (!r) { err(`${e}.status`, `must be a status (200), a list ([200, 204]) or a range ("200-299"), got ${JSON.stringify(v.status)}`); ok = false; }
    else status = r;
  }
  if (v.body !== undefined && (typeof v.body !== 'string' || v.body.length === 0 || v.body.length > 1024)) { err(`${e}.body`, 'must be a non-empty string of at most 1024 characters (a substring the body must contain)'); ok = false; }
  if (!ok) return undefined;
  return { port: p!, path, ...(typeof v.host === 'string' ? { host: v.host } : {}), status, ...(typeof v.body === 'string' ? { body: v.body } : {}) };
}

/** `healthCheck.udp` / `.dns` / `.http`: the parsed spec, or undefined after reporting through err. */
export function parseServiceCheck(key: ServiceCheckKey, v: unknown, entry: string, err: Err): UdpCheckSpec | DnsCheckSpec | HttpCheckSpec | undefined {
  if (!isMap(v)) {
    const shape = key === 'udp' ? '{ port, send? | sendHex?, expect? | expectHex? }' : key === 'dns' ? '{ name, type?, rcode?, port? }' : '{ port?, path?, host?, status?, body? }';
    err(entry, `must be ${shape}`);
    return undefined;
  }
  return key === 'udp' ? udpSpec(v, entry, err) : key === 'dns' ? dnsSpec(v, entry, err) : httpSpec(v, entry, err);
}
