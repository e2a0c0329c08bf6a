// Small checks shared by the front and back config loaders; each pushes { file, entry, reason }.

import { parseAddress, parsePrefix, formatAddress, formatPrefix, unusableAddressReason } from '../table/addr.js';
import { HEADROOM, slabGeometry } from '../tun/tun-device.js';
import type { ConfigError } from './config-errors.js';
import { DURATION_HINT, formatDuration, parseDuration } from './duration.js';

/**
 * Largest packet a TUN queue slot holds, so the largest `tun.mtu`: with offloads (virtio-net
 * header) a slot holds a 64 KiB GSO packet; without, the kernel's reads of a bigger packet would
 * be cut to the slot and dropped.
 */
export function maxTunMtu(offload: boolean): number {
  const g = slabGeometry(offload, { headroom: HEADROOM });
  return Math.min(65535, g.slotSize - g.headroom);
}

export class Checker {
  readonly errors: ConfigError[] = [];
  constructor(readonly file: string) {}

  err(entry: string, reason: string): void {
    this.errors.push({ file: this.file, entry, reason });
  }

  /** Canonical address text, or null after recording an error. */
  address(entry: string, v: unknown): string | null {
    const a = parseAddress(v);
    if (!a) { this.err(entry, `not an IPv4 or IPv6 address: ${JSON.stringify(v)}`); return null; }
    return formatAddress(a.family, a.words);
  }

  /** Canonical prefix text, or null after recording an error (host bits set is an error). */
  prefix(entry: string, v: unknown): string | null {
    const p = parsePrefix(v);
    if (!p) { this.err(entry, `not a prefix (ADDRESS/LENGTH): ${JSON.stringify(v)}`); return null; }
    if (p.hostBitsSet) {
      this.err(entry, `host bits set in ${String(v)} (did you mean ${suggestPrefix(String(v))}?)`);
      return null;
    }
    return formatPrefix(p.family, p.words, p.len);
  }

  /** An address a service or back may have (not unspecified, loopback or multicast); canonical text or null. */
  unicastAddress(entry: string, v: unknown): string | null {
    const a = this.address(entry, v);
    if (a === null) return null;
    const p = parseAddress(a)!;
    const why = unusableAddressReason(p.family, p.words);
    if (why !== null) { this.err(entry, `${a} is ${why}: not usable as a service or back address`); return null; }
    return a;
  }

  /** Prefixes of senders to trust: a /0 would trust every sender, so it is refused. */
  senderPrefixList(entry: string, v: unknown): string[] {
    if (!Array.isArray(v)) { this.err(entry, 'must be a list of prefixes'); return []; }
    const out: string[] = [];
    v.forEach((x, i) => {
      const p = this.prefix(`${entry}[${i}]`, x);
      if (!p) return;
      if (p.endsWith('/0')) { this.err(`${entry}[${i}]`, `${p} would accept every sender: list the fronts' own prefixes`); return; }
      out.push(p);
    });
    return out;
  }

  /** tun.mtu: 576 up to what a queue slot holds (see maxTunMtu). */
  tunMtu(entry: string, v: unknown, offload: boolean): void {
    const max = maxTunMtu(offload);
    if (typeof v === 'number' && Number.isInteger(v) && v > max && v <= 65535 && !offload) {
      this.err(entry, `${v} is larger than a TUN slot holds without offloads (${max} bytes): lower it or set offload.enabled: true`);
      return;
    }
    this.intRange(entry, v, 576, max);
  }

  addressList(entry: string, v: unknown): string[] {
    if (!Array.isArray(v)) { this.err(entry, 'must be a list of addresses'); return []; }
    const out: string[] = [];
    v.forEach((x, i) => { const a = this.address(`${entry}[${i}]`, x); if (a) out.push(a); });
    return out;
  }

  prefixList(entry: string, v: unknown): string[] {
    if (!Array.isArray(v)) { this.err(entry, 'must be a list of prefixes'); return []; }
    const out: string[] = [];
    v.forEach((x, i) => { const p = this.prefix(`${entry}[${i}]`, x); if (p) out.push(p); });
    return out;
  }

  intRange(entry: string, v: unknown, lo: number, hi: number): void {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) this.err(entry, `must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
  }

  /** A duration (seconds after convict's coercion: "2000" reads as 33m20s) from lo to hi seconds. */
  duration(entry: string, v: unknown, lo: number, hi: number): void {
    const s = parseDuration(v);
    if (s === null) { this.err(entry, `must be ${DURATION_HINT}, got ${JSON.stringify(v)}`); return; }
    if (s < lo || s > hi) this.err(entry, `must be from ${formatDuration(lo)} to ${formatDuration(hi)}, got ${formatDuration(s)}`);
  }

  /**
   * "host:port" or "[address]:port". Brackets may hold an IPv4 address too, so a template such as
   * "[$(POD_IP)]:9102" (Kubernetes downward API) works whatever the pod's family.
   */
  listen(entry: string, v: unknown): void {
    if (typeof v !== 'string' || v === '') { this.err(entry, 'must be "ADDRESS:PORT" or "[IPV6]:PORT"'); return; }
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
    if (!m || Number(m[3]) > 65535 || (m[1] !== undefined && parseAddress(m[1]) === null)) {
      this.err(entry, `must be "ADDRESS:PORT" or "[IPV6]:PORT", got ${JSON.stringify(v)}`);
    }
  }
}

/** Mask out host bits to suggest a fix: "did you mean …". */
export function suggestPrefix(v: string): string | null {
  const p = parsePrefix(v);
  if (!p) return null;
  const w = new Uint32Array(4);
  const nw = p.family === 4 ? 1 : 4;
  for (let i = 0; i < nw; i++) {
    const bits = p.len - 32 * i;
    const m = bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    w[i] = (p.words[i]! & m) >>> 0;
  }
  return formatPrefix(p.family, w, p.len);
}
