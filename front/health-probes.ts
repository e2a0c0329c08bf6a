// The real health probes (front/health-checker.ts decides what to probe and when). Each resolves
// once, within its timeout, with a bounded failure reason; sockets are closed on every path. The
// service probes bind to a probe source address so the kernel routes them through the front's TUN
// and the back (the internal route source -> back).
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { parseDnsReply, rcodeName, setDnsId } from './dns-message.js';
import type { HealthFailureReason } from '../shared/metrics/health-metrics.js';

export interface ProbeResult {
  ok: boolean;
  detail: string;
  /** Why it failed (absent when ok). */
  reason?: HealthFailureReason;
}

/** What an HTTP service probe asks and accepts (status ranges inclusive). */
export interface HttpServiceRequest {
  path: string;
  host?: string;
  status: readonly (readonly [number, number])[];
  body?: string;
}

export interface Probes {
  /** GET url (the back's /readyz): 2xx is good. */
  http(url: string, timeoutMs: number): Promise<ProbeResult>;
  tcp(host: string, port: number, localAddress: string, timeoutMs: number): Promise<ProbeResult>;
  /** Send `payload`; good on a reply (containing `expect` when given). */
  udp(host: string, port: number, localAddress: string, payload: Buffer, expect: Buffer | undefined, timeoutMs: number): Promise<ProbeResult>;
  /** Send `query` (a fresh id is written into it); good on `rcode`, or NOERROR with an answer. */
  dns(host: string, port: number, localAddress: string, query: Buffer, rcode: number | undefined, timeoutMs: number): Promise<ProbeResult>;
  httpService(host: string, port: number, localAddress: string, req: HttpServiceRequest, timeoutMs: number): Promise<ProbeResult>;
}

const UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']);

/** The bounded reason of a socket error. */
export function errorReason(e: unknown): HealthFailureReason {
  const code = (e as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (UNREACHABLE.has(code)) return 'unreachable';
  return 'error';
}

/** Body bytes read for a substring check; a probe need not download a large page. */
const MAX_BODY = 64 * 1024;

function get(u: URL, localAddress: string | undefined, req: HttpServiceRequest, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    let r: ClientRequest | undefined;
    const finish = (res: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      r?.destroy();
      resolve(res);
    };
    const timer = setTimeout(() => finish({ ok: false, detail: `timeout after ${timeoutMs} ms`, reason: 'timeout' }), timeoutMs);
    try {
      const headers: Record<string, string> = { 'user-agent': 'mslb-front-health', connection: 'close' };
      if (req.host) headers.host = req.host;
      r = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: 'GET', agent: false, headers, ...(localAddress ? { localAddress } : {}) }, (res) => {
        const code = res.statusCode ?? 0;
        const statusOk = req.status.some(([lo, hi]) => code >= lo && code <= hi);
        if (!statusOk) { res.resume(); finish({ ok: false, detail: `HTTP ${code}`, reason: 'bad_status' }); return; }
        if (req.body === undefined) { res.resume(); res.on('end', () => finish({ ok: true, detail: `HTTP ${code}` })); res.on('error', (e) => finish({ ok: false, detail: e.message, reason: errorReason(e) })); return; }
        // Keep only what can still hold the substring: no unbounded buffering.
        const want = Buffer.from(req.body, 'utf8');
        let tail = Buffer.alloc(0);
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          const b = tail.length ? Buffer.concat([tail, chunk]) : chunk;
          if (b.indexOf(want) >= 0) { finish({ ok: true, detail: `HTTP ${code}, body has ${JSON.stringify(req.body)}` }); return; }
          seen += chunk.length;
          if (seen >= MAX_BODY) { finish({ ok: false, detail: `HTTP ${code}, no ${JSON.stringify(req.body)} in the first ${MAX_BODY} bytes`, reason: 'bad_body' }); return; }
          tail = Buffer.from(b.subarray(Math.max(0, b.length - want.length + 1)));
        });
        res.on('end', () => finish({ ok: false, detail: `HTTP ${code}, body has no ${JSON.stringify(req.body)}`, reason: 'bad_body' }));
        res.on('error', (e) => finish({ ok: false, detail: e.message, reason: errorReason(e) }));
      });
      r.on('error', (e) => finish({ ok: false, detail: e.message, reason: errorReason(e) }));
      r.end();
    } catch (e) {
      finish({ ok: false, detail: (e as Error).message, reason: 'error' });
    }
  });
}

const READYZ: HttpServiceRequest = { path: '/', status: [[200, 299]] };

/** GET url; 2xx within the timeout is good. No keep-alive: each probe is a new connection. */
function httpProbe(url: string, timeoutMs: number): Promise<ProbeResult> {
  let u: URL;
  try { u = new URL(url); } catch (e) { return Promise.resolve({ ok: false, detail: (e as Error).message, reason: 'error' }); }
  return get(u, undefined, READYZ, timeoutMs);
}

function httpServiceProbe(host: string, port: number, localAddress: string, req: HttpServiceRequest, timeoutMs: number): Promise<ProbeResult> {
  const u = new URL(`http://${host.includes(':') ? `[${host}]` : host}:${port}${req.path}`);
  return get(u, localAddress, req, timeoutMs);
}

/** TCP connect from localAddress; established within the timeout is good; then reset (no TIME_WAIT). */
function tcpProbe(host: string, port: number, localAddress: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    const sock = connect({ host, port, localAddress, family: host.includes(':') ? 6 : 4 });
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (r.ok) sock.resetAndDestroy();
      else sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, detail: `connect timeout after ${timeoutMs} ms`, reason: 'timeout' }), timeoutMs);
    sock.once('connect', () => finish({ ok: true, detail: 'connected' }));
    sock.once('error', (e) => finish({ ok: false, detail: e.message, reason: errorReason(e) }));
  });
}

/**
 * One datagram exchange on a connected UDP socket bound to localAddress: connected, so the kernel
 * hands the socket an ICMP port unreachable as ECONNREFUSED (a stopped service fails at once rather
 * than after the timeout) and drops datagrams from anyone else.
 */
function exchange(host: string, port: number, localAddress: string, payload: Buffer, timeoutMs: number, judge: (msg: Buffer) => ProbeResult): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    let sock: UdpSocket | undefined;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { sock?.close(); } catch { /* not bound yet */ }
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, detail: `no reply after ${timeoutMs} ms`, reason: 'timeout' }), timeoutMs);
    try {
      sock = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
      sock.on('error', (e) => finish({ ok: false, detail: e.message, reason: errorReason(e) }));
      sock.on('message', (msg) => finish(judge(msg)));
      sock.bind({ address: localAddress, port: 0 }, () => {
        sock!.connect(port, host, () => {
          sock!.send(payload, (e) => { if (e) finish({ ok: false, detail: e.message, reason: errorReason(e) }); });
        });
      });
    } catch (e) {
      finish({ ok: false, detail: (e as Error).message, reason: 'error' });
    }
  });
}

function udpProbe(host: string, port: number, localAddress: string, payload: Buffer, expect: Buffer | undefined, timeoutMs: number): Promise<ProbeResult> {
  return exchange(host, port, localAddress, payload, timeoutMs, (msg) => {
    if (expect && msg.indexOf(expect) < 0) return { ok: false, detail: `reply of ${msg.length} bytes without the expected ${expect.length}`, reason: 'bad_reply' };
    return { ok: true, detail: `reply of ${msg.length} bytes` };
  });
}

function dnsProbe(host: string, port: number, localAddress: string, query: Buffer, rcode: number | undefined, timeoutMs: number): Promise<ProbeResult> {
  const id = (Math.random() * 0x10000) | 0;
  setDnsId(query, id);
  return exchange(host, port, localAddress, query, timeoutMs, (msg) => {
    const h = parseDnsReply(msg, id);
    if (typeof h === 'string') return { ok: false, detail: `not a DNS answer: ${h}`, reason: 'bad_reply' };
    const got = `${rcodeName(h.rcode)}, ${h.answers} answers`;
    if (rcode !== undefined) return h.rcode === rcode ? { ok: true, detail: got } : { ok: false, detail: `${got}, expected ${rcodeName(rcode)}`, reason: 'rcode' };
    if (h.rcode !== 0) return { ok: false, detail: `${got}, expected NOERROR`, reason: 'rcode' };
    if (h.answers === 0) return { ok: false, detail: `${got}, expected at least one`, reason: 'bad_reply' };
    return { ok: true, detail: got };
  });
}

export const realProbes: Probes = { http: httpProbe, tcp: tcpProbe, udp: udpProbe, dns: dnsProbe, httpService: httpServiceProbe };
