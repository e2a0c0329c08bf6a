// Helpers of the data-path e2e tests (test/e2e/datapath-*.test.ts): per-packet header fields of a
// capture as tshark reads them (outer and inner header of tunnel packets), counter deltas that wait
// for the services' start-up noise to settle, and the address each client should be wrapped toward.
import type { Capture } from '../../lab/capture.js';
import { BACKS, CLIENTS, S4, S6, expectedServer, type ClientName } from '../../lab/address-plan.js';
import { sumMetric, type Lab, type ServiceName } from '../../lab/lab.js';
import { expect } from 'vitest';
import { PYTHON } from '../../lab/paths.js';
import { DROP_REASONS } from '../../shared/metrics/counter-layout.js';

export interface IpHeader {
  version: 4 | 6;
  src: string;
  dst: string;
  /** IPv4 protocol / IPv6 next header. */
  proto: number;
  /** TTL / hop limit. */
  hop: number;
  /** IPv4 TOS / IPv6 traffic class byte (DSCP << 2 | ECN). */
  tos: number;
  /** IPv6 flow label (0 for IPv4). */
  flow: number;
}

export interface PacketFields {
  frame: number;
  protocols: string;
  /** IP headers outermost first (two for a tunnel packet). */
  ip: IpHeader[];
  /** Ports of the innermost TCP or UDP header (0 when none). */
  sport: number;
  dport: number;
}

// tshark's capture-start probes (lab/capture.ts) are left out of every result.
const NOT_PROBE = '!(ipv6.dst == ff02::1 && udp.dstport == 9)';
const V4 = ['ip.src', 'ip.dst', 'ip.proto', 'ip.ttl', 'ip.dsfield'] as const;
const V6 = ['ipv6.src', 'ipv6.dst', 'ipv6.nxt', 'ipv6.hlim', 'ipv6.tclass', 'ipv6.flow'] as const;
const FIELDS = ['frame.number', 'frame.protocols', ...V4, ...V6, 'tcp.srcport', 'tcp.dstport', 'udp.srcport', 'udp.dstport'];

/** Every packet of a stopped capture matching `displayFilter`, with all its IP headers in order. */
export function captureFields(lab: Lab, cap: Capture, displayFilter?: string): PacketFields[] {
  const filter = displayFilter ? `(${displayFilter}) && ${NOT_PROBE}` : NOT_PROBE;
  const out = lab.set.exec(
    cap.end.ns,
    'tshark',
    ['-n', '-r', cap.file, '-Y', filter, '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...FIELDS.flatMap((f) => ['-e', f])],
    { timeoutMs: 60_000 },
  );
  const rows: PacketFields[] = [];
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const col = line.split('\t');
    const get = (name: string): string[] => {
      const v = col[FIELDS.indexOf(name)] ?? '';
      return v ? v.split(',') : [];
    };
    const num = (s: string | undefined): number => (s === undefined || s === '' ? 0 : Number(s));
    const protocols = col[1] ?? '';
    const order = protocols.split(':').filter((p) => p === 'ip' || p === 'ipv6');
    const seen = { ip: 0, ipv6: 0 };
    const ip: IpHeader[] = order.map((p) => {
      const i = seen[p as 'ip' | 'ipv6']++;
      if (p === 'ip') {
        return {
          version: 4, src: get('ip.src')[i]!, dst: get('ip.dst')[i]!, proto: num(get('ip.proto')[i]),
          hop: num(get('ip.ttl')[i]), tos: num(get('ip.dsfield')[i]), flow: 0,
        };
      }
      return {
        version: 6, src: get('ipv6.src')[i]!, dst: get('ipv6.dst')[i]!, proto: num(get('ipv6.nxt')[i]),
        hop: num(get('ipv6.hlim')[i]), tos: num(get('ipv6.tclass')[i]), flow: num(get('ipv6.flow')[i]),
      };
    });
    const tcp = get('tcp.srcport').length > 0;
    rows.push({
      frame: Number(col[0]),
      protocols,
      ip,
      sport: num((tcp ? get('tcp.srcport') : get('udp.srcport')).at(-1)),
      dport: num((tcp ? get('tcp.dstport') : get('udp.dstport')).at(-1)),
    });
  }
  return rows;
}

const SCAPY_SENDER = `
from scapy.all import *  # IP, IPv6, UDP, TCP, Raw, ... for the expressions
import json, os, socket, sys
exprs, count = json.loads(sys.argv[1]), int(sys.argv[2])
socks = {}
for e in exprs:
    p = eval(e)
    b = bytes(p)
    v6 = (b[0] >> 4) == 6
    if v6 not in socks:
        socks[v6] = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    dst = p[IPv6].dst if v6 else p[IP].dst
    for i in range(count):
        socks[v6].sendto(b, (dst, 0))
        print(b.hex())
`;

/**
 * Send whole packets given as scapy expressions (e.g. "IPv6(src=..., dst=B)/IPv6(...)/UDP(dport=9)"),
 * each \`count\` times, from namespace \`ns\` through IPPROTO_RAW sockets (the kernel adds nothing),
 * in one Python process. Returns the bytes sent, in order.
 */
export async function sendScapy(lab: Lab, ns: string, exprs: string[], count = 1): Promise<Uint8Array[]> {
  const r = await lab.set.run(ns, PYTHON, ['-c', SCAPY_SENDER, JSON.stringify(exprs), String(count)], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`scapy sender failed (${r.code}): ${r.stderr.trim().slice(-400)}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
}

/**
 * Scapy expression of a packet from a client to S (or `dst`): IP header with hop limit 64 and the
 * DSCP/ECN byte `tos`, then `upper` (a scapy expression) or, with `proto`, `size` random bytes.
 */
export function clientPacket(client: ClientName, o: { upper?: string; proto?: number; size?: number; tos?: number; dst?: string }): string {
  const src = CLIENTS[client].address;
  const dst = o.dst ?? serviceOf(client);
  const tos = o.tos ?? 0;
  const proto = o.upper === undefined ? `, ${CLIENTS[client].family === 'ipv6' ? 'nh' : 'proto'}=${o.proto ?? 253}` : '';
  const ip = CLIENTS[client].family === 'ipv6'
    ? `IPv6(src='${src}', dst='${dst}', hlim=64, tc=${tos}${proto})`
    : `IP(src='${src}', dst='${dst}', ttl=64, flags='DF', tos=${tos}${proto})`;
  return `${ip}/${o.upper ?? `Raw(os.urandom(${o.size ?? 100}))`}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every drop reason's value at one service (reason -> count). */
export async function drops(lab: Lab, svc: ServiceName): Promise<Record<string, number>> {
  const text = await lab.metrics(svc);
  const out: Record<string, number> = {};
  for (const r of DROP_REASONS) {
    const m = new RegExp(`^mslb_drops_total\\{[^}]*reason="${r}"[^}]*\\}\\s+(\\S+)`, 'm').exec(text);
    out[r] = m ? Number(m[1]) : NaN;
  }
  return out;
}

/**
 * Wait (bounded) until the services' drop counters stop moving: a freshly created TUN receives the
 * kernel's own MLD reports for about 1.5 s (counted drops, not_service), which must not be mistaken
 * for the test's packets. Returns the settled counters per service.
 */
export async function settledDrops(lab: Lab, svcs: ServiceName[], timeoutMs = 8000): Promise<Record<string, Record<string, number>>> {
  const read = async (): Promise<Record<string, Record<string, number>>> =>
    Object.fromEntries(await Promise.all(svcs.map(async (s) => [s, await drops(lab, s)] as const)));
  const t0 = Date.now();
  let prev = await read();
  for (;;) {
    await sleep(1000);
    const now = await read();
    if (JSON.stringify(now) === JSON.stringify(prev)) return now;
    if (Date.now() - t0 > timeoutMs) throw new Error(`drop counters still moving after ${timeoutMs} ms: ${JSON.stringify(now)}`);
    prev = now;
  }
}

/** Counter changes between two readings of drops() (reasons that did not change are left out). */
export function dropDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const k of Object.keys(after)) if (!Object.is(after[k], before[k])) d[k] = after[k]! - (before[k] ?? 0);
  return d;
}

/**
 * BPF filter for TCP/UDP to or from the lab's client prefixes: captures at the servers see only the
 * clients' traffic, not the front's health probes or anything else the lab may add.
 */
export const CLIENT_TRAFFIC = `(tcp or udp) and (${[...new Set(Object.values(CLIENTS).map((c) => `net ${c.prefix}`))].join(' or ')})`;

/** The back (by the deploy/lab table) a client's packets go to. */
export function backOf(client: ClientName): 'back1' | 'back2' {
  return expectedServer(client) === 'server1' ? 'back1' : 'back2';
}

export function serviceOf(client: ClientName): string {
  return CLIENTS[client].family === 'ipv6' ? S6 : S4;
}

/**
 * Where the front wraps a client's packets in the lab's encap modes: same family (table-encap.yaml,
 * encap.source: service) or the other family (table-mixed.yaml, source4/source6 = S of that family).
 */
export function expectedOuter(client: ClientName, mixed: boolean): { version: 4 | 6; src: string; dst: string; proto: number } {
  const inner6 = CLIENTS[client].family === 'ipv6';
  const outer6 = mixed ? !inner6 : inner6;
  const b = BACKS[backOf(client)];
  return { version: outer6 ? 6 : 4, src: outer6 ? S6 : S4, dst: outer6 ? b.v6 : b.v4, proto: inner6 ? 41 : 4 };
}

/** An address field of a raw packet as text (IPv4 dotted, IPv6 in the kernel's compressed form). */
export function addrOf(p: Uint8Array, off: number, len: 4 | 16): string {
  if (len === 4) return Array.from(p.subarray(off, off + 4)).join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((p[off + i]! << 8) | p[off + i + 1]!).toString(16));
  // Compress the longest run of zero words (RFC 5952), enough for the lab's addresses.
  const text = words.join(':');
  let best = '';
  for (const m of text.matchAll(/(?:^|:)(0(?::0)+)(?=:|$)/g)) if (m[1]!.length > best.length) best = m[1]!;
  return best ? text.replace(new RegExp(`(^|:)${best}(:|$)`), '::').replace(/^:::/, '::').replace(/:::$/, '::') : text;
}

/**
 * The `service` label counts what is sent to each service: 5 scapy packets c1v6 -> S6 and 3 c1v4 ->
 * S4, both routed to b1. At the front and at back1 (translated or unwrapped there) each service's
 * packets and bytes (the client's packets, no tunnel header) grow by exactly that, the front's
 * decisions by one per packet; nothing moves at back2. Every series exists before the traffic.
 */
export async function expectServiceCounts(lab: Lab): Promise<void> {
  const want: Record<string, number> = { [S6]: 5, [S4]: 3 };
  const read = async () => {
    const out: Record<string, number> = {};
    for (const s of ['front', 'back1', 'back2'] as const) {
      const text = await lab.metrics(s);
      for (const sv of Object.keys(want)) {
        out[`${s} packets ${sv}`] = sumMetric(text, 'mslb_service_packets_total', { service: sv });
        out[`${s} bytes ${sv}`] = sumMetric(text, 'mslb_service_bytes_total', { service: sv });
        if (s === 'front') out[`front decisions ${sv}`] = sumMetric(text, 'mslb_service_decisions_total', { service: sv });
      }
    }
    return out;
  };
  const before = await read();
  for (const [k, v] of Object.entries(before)) expect(v, k).not.toBeNaN();
  const exprs: string[] = [];
  for (let i = 0; i < want[S6]!; i++) exprs.push(clientPacket('c1v6', { proto: 253, size: 100 + i }));
  for (let i = 0; i < want[S4]!; i++) exprs.push(clientPacket('c1v4', { proto: 253, size: 300 + i }));
  const bytes: Record<string, number> = {};
  for (const p of await sendScapy(lab, lab.ns.client, exprs)) {
    const sv = p[0]! >> 4 === 6 ? addrOf(p, 24, 16) : addrOf(p, 16, 4);
    bytes[sv] = (bytes[sv] ?? 0) + p.length;
  }
  expect(Object.keys(bytes).sort()).toEqual(Object.keys(want).sort());
  const expected: Record<string, number> = { ...before };
  for (const [sv, n] of Object.entries(want)) {
    for (const s of ['front', 'back1'] as const) {
      expected[`${s} packets ${sv}`]! += n;
      expected[`${s} bytes ${sv}`]! += bytes[sv]!;
    }
    expected[`front decisions ${sv}`]! += n; // the first by source prefix, the others from the flow table
  }
  let now = await read();
  for (let i = 0; i < 50 && JSON.stringify(now) !== JSON.stringify(expected); i++) {
    await sleep(100);
    now = await read();
  }
  expect(now).toEqual(expected);
}
