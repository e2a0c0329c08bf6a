// Traffic from the client namespace, from one chosen client address, each bounded by a timeout:
// curl over HTTP and HTTPS (a real TLS handshake), openssl s_client (-bind picks the source),
// a UDP exchange, and scapy-built raw packets. Each returns which server answered.
import { CLIENTS, PORTS, hostPart, serviceFor, type ClientName } from './address-plan.js';
import type { NetnsSet } from './netns.js';
import { PYTHON } from './paths.js';

export interface ClientResult {
  ok: boolean;
  /** The server that answered (first line of its answer / the certificate CN), if any. */
  server?: string;
  /** The client address the server saw (HTTP, UDP), to check transparency (source = client). */
  sawSource?: string;
  /** What went wrong, or the raw answer. */
  detail: string;
  ms: number;
}

export interface ClientOptions {
  timeoutMs?: number;
  /** Destination; default S of the client's family. */
  dst?: string;
}

function parseAnswer(text: string): { server?: string; sawSource?: string } {
  const lines = text.split('\n');
  return { server: lines[0] || undefined, sawSource: lines[1] || undefined };
}

/** curl http(s)://[S]/ from the client address; `tls` uses HTTPS (-k: the lab's self-signed cert). */
export async function curl(set: NetnsSet, ns: string, client: ClientName, opts: ClientOptions & { tls?: boolean } = {}): Promise<ClientResult> {
  const c = CLIENTS[client];
  const dst = opts.dst ?? serviceFor(c.family);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const url = opts.tls ? `https://${hostPart(dst)}:${PORTS.https}/` : `http://${hostPart(dst)}:${PORTS.http}/`;
  const t0 = Date.now();
  const r = await set.run(
    ns,
    'curl',
    ['-sS', '--max-time', String(timeoutMs / 1000), '--interface', c.address, ...(opts.tls ? ['-k'] : []), url],
    { timeoutMs: timeoutMs + 2000 },
  );
  const ms = Date.now() - t0;
  if (r.code !== 0) return { ok: false, detail: `curl exit ${r.code}: ${r.stderr.trim()}`, ms };
  return { ok: true, ...parseAnswer(r.stdout), detail: r.stdout.trim(), ms };
}

/** openssl s_client handshake to [S]:4433 bound to the client address; server = certificate CN. */
export async function opensslHandshake(set: NetnsSet, ns: string, client: ClientName, opts: ClientOptions = {}): Promise<ClientResult> {
  const c = CLIENTS[client];
  const dst = opts.dst ?? serviceFor(c.family);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const t0 = Date.now();
  // `timeout` bounds s_client itself (it has no overall timeout option); stdin EOF ends it after the handshake.
  const r = await set.run(
    ns,
    'timeout',
    [String(timeoutMs / 1000), 'openssl', 's_client', '-connect', `${hostPart(dst)}:${PORTS.opensslTls}`, '-bind', `${hostPart(c.address)}:0`],
    { input: '', timeoutMs: timeoutMs + 2000 },
  );
  const ms = Date.now() - t0;
  const cn = /^subject=.*CN\s*=\s*([^,\s]+)/m.exec(r.stdout)?.[1];
  const proto = /^New, (TLSv[\d.]+), Cipher is (\S+)/m.exec(r.stdout);
  if (!cn || !proto) return { ok: false, detail: `s_client exit ${r.code}: ${(r.stderr + r.stdout).trim().slice(-400)}`, ms };
  return { ok: true, server: cn, detail: `${proto[1]} ${proto[2]}`, ms };
}

const UDP_CLIENT = `
import socket, sys, time
src, dst, port, n, tmo = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((src, 0))
s.connect((dst, port))
s.settimeout(tmo / 3)
for attempt in range(3):
    s.send(b'm' * n)
    try:
        print(s.recv(4096).decode(), end='')
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(3)
`;

/** A UDP datagram of `size` bytes from the client address to [S]:7 (3 tries); server = echo's name. */
export async function udp(set: NetnsSet, ns: string, client: ClientName, opts: ClientOptions & { size?: number } = {}): Promise<ClientResult> {
  const c = CLIENTS[client];
  const dst = opts.dst ?? serviceFor(c.family);
  const timeoutMs = opts.timeoutMs ?? 3000;
  const t0 = Date.now();
  const r = await set.run(
    ns,
    PYTHON,
    ['-c', UDP_CLIENT, c.address, dst, String(PORTS.udpEcho), String(opts.size ?? 32), String(timeoutMs / 1000)],
    { timeoutMs: timeoutMs + 2000 },
  );
  const ms = Date.now() - t0;
  if (r.code !== 0) return { ok: false, detail: r.code === 3 ? 'no UDP answer' : `udp client exit ${r.code}: ${r.stderr.trim()}`, ms };
  return { ok: true, ...parseAnswer(r.stdout), detail: r.stdout.trim(), ms };
}

const RAW_SENDER = `
from scapy.all import *  # IP, IPv6, Raw and every name the optional upper-layer expression may use
import os, socket, sys
src, dst, proto, size, count, upper, tos = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
v6 = ':' in dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(count):
    payload = os.urandom(size)
    if upper:
        p = (IPv6(src=src, dst=dst, hlim=64, tc=tos) if v6 else IP(src=src, dst=dst, ttl=64, flags='DF', tos=tos)) / eval(upper)
    else:
        p = (IPv6(src=src, dst=dst, nh=proto, hlim=64, tc=tos) if v6 else IP(src=src, dst=dst, proto=proto, ttl=64, flags='DF', tos=tos)) / Raw(payload)
    b = bytes(p)
    s.sendto(b, (dst, 0))
    print(b.hex())
`;

/**
 * Raw packets built by scapy (IP protocol / next header `proto`, random payload of `size`), sent whole
 * through an IPPROTO_RAW socket (the kernel adds nothing). Returns each packet's bytes as sent.
 * `upper` replaces the random payload with a scapy expression for everything after the IP header,
 * e.g. "UDP(sport=4000, dport=9, chksum=0x1234)/Raw(b'x'*20)" (a deliberately wrong checksum), or an
 * inner packet for a tunnel: "IPv6(src='2001:db8:c1::10', dst='2001:db8:5::80')/UDP(dport=9)".
 * `src` replaces the client's address as the (outer) source, e.g. to send from another namespace;
 * `tos` is the IPv4 TOS / IPv6 traffic class byte (DSCP << 2 | ECN), default 0.
 */
export async function sendRaw(
  set: NetnsSet,
  ns: string,
  client: ClientName,
  opts: { proto?: number; size?: number; count?: number; dst?: string; src?: string; upper?: string; tos?: number; timeoutMs?: number } = {},
): Promise<Uint8Array[]> {
  const c = CLIENTS[client];
  const dst = opts.dst ?? serviceFor(c.family);
  const r = await set.run(
    ns,
    PYTHON,
    ['-c', RAW_SENDER, opts.src ?? c.address, dst, String(opts.proto ?? 253), String(opts.size ?? 100), String(opts.count ?? 1), opts.upper ?? '', String(opts.tos ?? 0)],
    { timeoutMs: opts.timeoutMs ?? 20_000 },
  );
  if (r.code !== 0) throw new Error(`raw sender failed (${r.code}): ${r.stderr.trim().slice(-400)}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
}
