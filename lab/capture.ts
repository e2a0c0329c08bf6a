// Packet captures inside a namespace, judged by independent dissectors: tshark (with checksum
// verification forced on) for addresses and checksums, scapy for the raw bytes.
// Veth keeps locally sent packets CHECKSUM_PARTIAL (the checksum field holds only the pseudo-header
// sum), so a capture judges nothing unless transmit checksum offload is off on the link's sending
// side: then the kernel writes the real checksum before the packet crosses, and a wrong partial sum
// (e.g. a bad incremental update by the front) becomes a wrong checksum tshark reports.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { NetnsSet } from './netns.js';
import { waitFor, waitForOutput } from './netns.js';
import { PYTHON } from './paths.js';
import type { Link, LinkEnd } from './topology.js';

export interface BadChecksum {
  frame: number;
  /** Which header's checksum tshark found wrong: ip, tcp, udp, icmp, icmpv6. */
  layer: string;
  src: string;
  dst: string;
}

export interface CaptureSummary {
  file: string;
  count: number;
  /** "src > dst" of the outermost IP header -> packets. */
  pairs: Record<string, number>;
  /** "src > dst" of the innermost IP header (differs from `pairs` for tunnel packets). */
  innerPairs: Record<string, number>;
  /** frame.protocols strings -> packets, e.g. "eth:ethertype:ipv6:tcp". */
  protocols: Record<string, number>;
  badChecksums: BadChecksum[];
  /** Checksums tshark checked and found right. */
  goodChecksums: number;
  /** Checksum fields tshark could not verify (e.g. IPv4 header checksum 0 or unsupported). */
  unverifiedChecksums: number;
}

/** Turn transmit checksum offload off (or on) on one link end. */
export function setTxChecksumOffload(set: NetnsSet, end: LinkEnd, on: boolean): void {
  set.exec(end.ns, 'ethtool', ['-K', end.iface, 'tx', on ? 'on' : 'off']);
}

const CHECKSUM_LAYERS = ['ip', 'tcp', 'udp', 'icmp', 'icmpv6'] as const;
const FIELDS = [
  'frame.number',
  'frame.protocols',
  'ip.src',
  'ip.dst',
  'ipv6.src',
  'ipv6.dst',
  ...CHECKSUM_LAYERS.map((l) => `${l}.checksum.status`),
];

// tshark prints "Capturing on" before packets really reach its file (measured: the first 50+ ms of
// traffic could be missing), so start() sends probes from the capturing namespace until one lands in
// the file. Probes go to all-nodes multicast on UDP port 9 and are left out of every result.
const PROBE_CAPTURE_FILTER = 'ip6 dst ff02::1 and udp dst port 9';
const PROBE_DISPLAY_FILTER = '!(ipv6.dst == ff02::1 && udp.dstport == 9)';
const PROBE_SENDER = `
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i in range(200):
    s.sendto(b'mslb-capture-probe', ('ff02::1%' + sys.argv[1], 9))
    time.sleep(0.025)
`;

/** Run tshark over a pcap with checksum validation on and summarise it (capture probes excluded). */
export function summarisePcap(set: NetnsSet, ns: string, file: string, displayFilter?: string): CaptureSummary {
  const filter = displayFilter ? `(${displayFilter}) && ${PROBE_DISPLAY_FILTER}` : PROBE_DISPLAY_FILTER;
  const out = set.exec(
    ns,
    'tshark',
    [
      '-n', '-r', file,
      '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-Y', filter,
      '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,',
      ...FIELDS.flatMap((f) => ['-e', f]),
    ],
    { timeoutMs: 60_000 },
  );
  const s: CaptureSummary = {
    file, count: 0, pairs: {}, innerPairs: {}, protocols: {}, badChecksums: [], goodChecksums: 0, unverifiedChecksums: 0,
  };
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const col = line.split('\t');
    const [frame, protos = '', ip4s = '', ip4d = '', ip6s = '', ip6d = ''] = col;
    s.count++;
    s.protocols[protos] = (s.protocols[protos] ?? 0) + 1;
    const layers = protos.split(':').filter((p) => p === 'ip' || p === 'ipv6');
    const list = (v: string): string[] => (v ? v.split(',') : []);
    const v4 = { s: list(ip4s), d: list(ip4d) };
    const v6 = { s: list(ip6s), d: list(ip6d) };
    // The outermost header is the first of its family; the innermost the last of its family.
    const pick = (fam: string | undefined, first: boolean): [string, string] => {
      const f = fam === 'ip' ? v4 : v6;
      const i = first ? 0 : f.s.length - 1;
      return [f.s[i] ?? '?', f.d[i] ?? '?'];
    };
    const outer = pick(layers[0], true);
    const inner = pick(layers[layers.length - 1], false);
    const k = `${outer[0]} > ${outer[1]}`;
    const ki = `${inner[0]} > ${inner[1]}`;
    s.pairs[k] = (s.pairs[k] ?? 0) + 1;
    s.innerPairs[ki] = (s.innerPairs[ki] ?? 0) + 1;
    CHECKSUM_LAYERS.forEach((layer, j) => {
      // Status values: 0 bad, 1 good, 2 unverified (one per occurrence, e.g. outer and inner IPv4).
      for (const st of list(col[6 + j] ?? '')) {
        if (st === '0' || /bad/i.test(st)) s.badChecksums.push({ frame: Number(frame), layer, src: inner[0], dst: inner[1] });
        else if (st === '1' || /good/i.test(st)) s.goodChecksums++;
        else s.unverifiedChecksums++;
      }
    });
  }
  return s;
}

const PCAP_BYTES = `
import sys
from scapy.all import rdpcap, Ether, IPv6, UDP
for p in rdpcap(sys.argv[1]):
    if IPv6 in p and UDP in p and p[IPv6].dst == 'ff02::1' and p[UDP].dport == 9:
        continue  # capture-start probe
    l3 = p.payload if isinstance(p, Ether) else p
    print(bytes(l3).hex())
`;

/** Every captured packet's IP bytes (link header removed, capture probes left out), read by scapy. */
export function pcapPackets(set: NetnsSet, ns: string, file: string): Uint8Array[] {
  return set
    .exec(ns, PYTHON, ['-c', PCAP_BYTES, file], { timeoutMs: 60_000 })
    .split('\n')
    .filter(Boolean)
    .map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
}

/** Equal apart from TTL / hop limit (and the IPv4 header checksum, which covers the TTL). */
export function sameApartFromHopLimit(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length || a.length < 1) return false;
  const v4 = a[0]! >> 4 === 4;
  for (let i = 0; i < a.length; i++) {
    if (v4 ? i === 8 || i === 10 || i === 11 : i === 7) continue;
    if (a[i] !== b[i]) return false;
  }
  return true;
}

export interface CaptureOptions {
  /** BPF capture filter (tshark -f), e.g. "ip6 or ip". */
  filter?: string;
  /** Turn tx checksum offload off on both ends of the link first (default true). */
  txOff?: boolean;
  /** Where to write the pcap. */
  dir: string;
  timeoutMs?: number;
}

let seq = 0;

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export class Capture {
  private constructor(
    private readonly set: NetnsSet,
    readonly end: LinkEnd,
    readonly file: string,
    private readonly proc: ChildProcess,
  ) {}

  /** Capture on the far (server-side) end of `link`; resolves once tshark is capturing. */
  static async start(set: NetnsSet, link: Link, name: string, opts: CaptureOptions): Promise<Capture> {
    if (opts.txOff ?? true) {
      setTxChecksumOffload(set, link.near, false);
      setTxChecksumOffload(set, link.far, false);
    }
    const end = link.far;
    const file = join(opts.dir, `${name}-${++seq}.pcap`);
    const filter = opts.filter ? `(${opts.filter}) or (${PROBE_CAPTURE_FILTER})` : undefined;
    const p = set.spawn(end.ns, 'tshark', ['-n', '-i', end.iface, '-F', 'pcap', '-w', file, ...(filter ? ['-f', filter] : [])]);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    await waitForOutput(p, /Capturing on/, timeoutMs, `tshark on ${end.ns}/${end.iface}`);
    const cap = new Capture(set, end, file, p);
    const probe = set.spawn(end.ns, PYTHON, ['-c', PROBE_SENDER, end.iface]);
    try {
      // A pcap file is a 24-byte header until the first packet is written.
      await waitFor(() => size(file) > 24, timeoutMs, `first packet in ${file}`);
    } finally {
      probe.kill('SIGKILL');
    }
    return cap;
  }

  /** Stop after `settleMs` (packets in flight land), wait for tshark to flush, and summarise. */
  async stop(settleMs = 300): Promise<CaptureSummary> {
    await this.halt(settleMs);
    return summarisePcap(this.set, this.end.ns, this.file);
  }

  /** Stop and return the raw IP packets (scapy). Call either this or stop(), or summary()/packets() after. */
  async stopPackets(settleMs = 300): Promise<Uint8Array[]> {
    await this.halt(settleMs);
    return this.packets();
  }

  summary(displayFilter?: string): CaptureSummary {
    return summarisePcap(this.set, this.end.ns, this.file, displayFilter);
  }

  packets(): Uint8Array[] {
    return pcapPackets(this.set, this.end.ns, this.file);
  }

  private async halt(settleMs: number): Promise<void> {
    const p = this.proc;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    await new Promise((r) => setTimeout(r, settleMs));
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGINT');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
