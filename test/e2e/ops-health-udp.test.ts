// A UDP health check in the lab (the setup of ops-health): both backs of pool web are checked every
// second by a TCP connect to S:80 and a UDP datagram to S:5300, each through the back from the
// front's probe source, and a DNS query to S:5301 (timeout 1 s, fall 2, rise 2). A small UDP echo on
// S:5300 and a DNS responder on S:5301 run in each server namespace beside the lab server. Stopping
// server1's UDP services while its TCP service keeps answering takes b1 out of the pool (kind udp),
// its keys go to b2; starting them again brings b1 back. The log lines, mslb_backend_up and the probe
// metrics say so. Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { Lab, PROBE } from '../helpers/lab.js';
import { addClientAddresses, curlFrom, healthBoundMs, healthFrontConfig, logEvents, sleep, untilMetric } from '../helpers/ops.js';
import { parseTableText } from '../../front/table/table-file.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { decide, DecisionInput, DecisionResult } from '../../front/decision.js';
import { parseAddress } from '../../shared/table/addr.js';

const HC = { interval: 1, timeout: 1, rise: 2, fall: 2 };
const boundMs = (n: number) => healthBoundMs(HC, n);
const SERVICES = ['2001:db8:5::80', '192.0.2.80'];
const UDP_PORT = 5300;
const DNS_PORT = 5301;

const FRONT = healthFrontConfig(HC, PROBE);
const CHECK = `{ servicePort: 80, udp: { port: ${UDP_PORT}, send: "are you there", expect: "echo:are you there" }, dns: { port: ${DNS_PORT}, name: www.example.com } }`;
const TABLE = `backs:
  b1:
    addresses: { "2001:db8:5::80": "2001:db8:b::1", "192.0.2.80": "198.51.100.1" }
    healthCheck: ${CHECK}
  b2:
    addresses: { "2001:db8:5::80": "2001:db8:b::2", "192.0.2.80": "198.51.100.2" }
    healthCheck: ${CHECK}
pools:
  web: { members: [b1, b2], key: source }
routes:
  - { source: 2001:db8:c1::/48, to: web }
  - { source: 203.0.113.0/26, to: web }
`;

/**
 * A UDP echo bound to each service address (not the wildcard: the reply must leave from S, or the
 * probe's connected socket would not take it). Prints "ready" once bound.
 */
const ECHO = `
const dgram = require('node:dgram');
let n = 0;
const want = 2 * (process.argv.length - 1);
// DNS: the query back with QR and RA set, NOERROR, and one A record 192.0.2.1 (name: pointer to the question).
const answer = (q) => {
  const a = Buffer.concat([q, Buffer.from('c00c000100010000003c0004c0000201', 'hex')]);
  a[2] |= 0x80; a[3] = 0x80; a.writeUInt16BE(1, 6);
  return a;
};
for (const a of process.argv.slice(1)) {
  for (const [port, reply] of [[${UDP_PORT}, (m) => Buffer.concat([Buffer.from('echo:'), m])], [${DNS_PORT}, answer]]) {
    const s = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
    s.on('message', (m, r) => s.send(reply(m), r.port, r.address));
    s.bind(port, a, () => { if (++n === want) console.log('ready'); });
  }
}
`;

/** Client addresses the table sends to b1 (two per family), computed from the table itself. */
function b1Keys(): string[] {
  const r = parseTableText(TABLE, 'table.yaml', { services: SERVICES, mode: 'translate', encap: { source: 'service', source4: '', source6: '' } });
  const slots = new Map<string, number>();
  const ct = CompiledTable.compile(r.table!, { services: SERVICES, flowLabelEnabled: false, lbspEnabled: false, slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; } });
  const inp = new DecisionInput();
  const res = new DecisionResult();
  const out: string[] = [];
  for (const fam of [6, 4] as const) {
    const cands = fam === 6 ? Array.from({ length: 16 }, (_, i) => `2001:db8:c1::${(0x100 + i).toString(16)}`) : Array.from({ length: 16 }, (_, i) => `203.0.113.${20 + i}`);
    let got = 0;
    for (const a of cands) {
      const p = parseAddress(a)!;
      inp.family = p.family;
      inp.src.fill(0); inp.src.set(p.words);
      inp.service.fill(0); inp.service.set(parseAddress(SERVICES[fam === 6 ? 0 : 1]!)!.words);
      decide(ct, inp, res);
      if (ct.meta.backNames[res.back] === 'b1' && got < 2) { out.push(a); got++; }
    }
  }
  return out;
}

describe.skipIf(!isRoot())('a UDP health check takes a back out when its UDP service stops while TCP still answers', () => {
  let lab: Lab;
  let dir = '';
  const echoes = new Map<string, ChildProcess>();
  const keys = b1Keys();

  async function startEcho(server: 'server1' | 'server2'): Promise<void> {
    const p = lab.set.spawn(lab.ns[server], process.execPath, ['-e', ECHO, ...SERVICES]);
    echoes.set(server, p);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${server} echo not ready`)), 10_000);
      p.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(t); resolve(); } });
      p.once('exit', (c) => { clearTimeout(t); reject(new Error(`${server} echo exited ${c}`)); });
    });
  }
  async function stopEcho(server: 'server1' | 'server2'): Promise<void> {
    const p = echoes.get(server)!;
    echoes.delete(server);
    if (p.exitCode !== null) return;
    await new Promise<void>((r) => { p.once('exit', () => r()); p.kill('SIGTERM'); });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-ops-health-udp-'));
    writeFileSync(join(dir, 'front.yaml'), FRONT);
    writeFileSync(join(dir, 'table.yaml'), TABLE);
    lab = await Lab.start({ mode: 'translate', frontConfig: join(dir, 'front.yaml') });
    addClientAddresses(lab, keys);
    await startEcho('server1');
    await startEcho('server2');
  }, 90_000);
  afterAll(async () => {
    for (const s of [...echoes.keys()]) await stopEcho(s as 'server1' | 'server2');
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  const where = async (ks: string[]) => Promise.all(ks.map(async (k) => (await curlFrom(lab, k)).server ?? 'none'));
  const m = (name: string, labels: Record<string, string>) => lab.metric('front', name, labels);

  it('out on UDP failure with TCP fine, back when UDP answers again (DNS probed the same way)', async () => {
    expect(keys).toHaveLength(4);
    // The probes run from the front's start, before the echo servers were started: a first round
    // may have been refused. Count failures from one interval after the echoes are up.
    await sleep(HC.interval * 1000 + 200);
    const udpBefore = await m('mslb_health_probe_failures_total', { backend: 'b1', kind: 'udp' });
    const dnsBefore = await m('mslb_health_probe_failures_total', { backend: 'b1', kind: 'dns' });
    await sleep(2500); // a few rounds
    expect(await m('mslb_backend_up', { backend: 'b1' })).toBe(1);
    expect(await m('mslb_backend_up', { backend: 'b2' })).toBe(1);
    expect(logEvents(lab, 'front', 'backend_down')).toEqual([]);
    expect(await m('mslb_health_probe_failures_total', { backend: 'b1', kind: 'udp' })).toBe(udpBefore);
    const rtt = await m('mslb_health_probe_duration_seconds', { backend: 'b1', kind: 'udp' });
    expect(rtt).toBeGreaterThan(0);
    expect(rtt).toBeLessThan(HC.timeout);
    expect(await m('mslb_health_probe_failures_total', { backend: 'b1', kind: 'dns' })).toBe(dnsBefore);
    expect(await m('mslb_health_probe_duration_seconds', { backend: 'b1', kind: 'dns' })).toBeGreaterThan(0);
    expect(await where(keys)).toEqual(keys.map(() => 'server1'));

    // server1's UDP echo and DNS responder stop; its lab server (TCP 80) keeps answering.
    await stopEcho('server1');
    const downMs = await untilMetric(lab, 'front', 'mslb_backend_up', { backend: 'b1' }, (v) => v === 0, boundMs(HC.fall) + 2000);
    const down = logEvents(lab, 'front', 'backend_down');
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ level: 'warn', backend: 'b1', kind: 'udp', fall: HC.fall });
    // Nothing listens: server1 answers the probe with ICMP port unreachable, which comes back to
    // the probe source by routing (a timeout would mean the ICMP was lost on the way).
    expect(down[0]!.reason).toBe('refused');
    // udp comes before dns in the order that names the failure; detail lists every failed probe.
    expect(down[0]!.detail).toMatch(/^udp \[2001:db8:5::80\]:5300 from 2001:db8:f::1: recvmsg ECONNREFUSED; udp 192\.0\.2\.80:5300 from 192\.0\.2\.193: recvmsg ECONNREFUSED; dns www\.example\.com \[2001:db8:5::80\]:5301 from 2001:db8:f::1: recvmsg ECONNREFUSED; dns www\.example\.com 192\.0\.2\.80:5301 .*ECONNREFUSED$/);
    expect(await m('mslb_health_last_failure_info', { backend: 'b1', kind: 'dns', reason: 'refused' })).toBe(1);
    expect(await m('mslb_health_probe_failures_total', { backend: 'b1', kind: 'tcp' })).toBe(0); // TCP still fine
    expect(await m('mslb_health_probe_failures_total', { backend: 'b1', kind: 'udp', reason: 'refused' })).toBeGreaterThanOrEqual(2 * HC.fall);
    expect(await m('mslb_health_last_failure_info', { backend: 'b1', kind: 'udp', reason: 'refused' })).toBe(1);
    expect(await m('mslb_backend_up', { backend: 'b2' })).toBe(1);
    // b1's keys now reach server2 (over TCP: curl), whose UDP still answers.
    expect(await where(keys)).toEqual(keys.map(() => 'server2'));

    await startEcho('server1');
    const upMs = await untilMetric(lab, 'front', 'mslb_backend_up', { backend: 'b1' }, (v) => v === 1, boundMs(HC.rise) + 2000);
    expect(logEvents(lab, 'front', 'backend_up')).toEqual([expect.objectContaining({ backend: 'b1', kind: 'udp', reason: 'refused', rise: HC.rise })]);
    expect(await where(keys)).toEqual(keys.map(() => 'server1'));
    expect(logEvents(lab, 'front', 'backend_down')).toHaveLength(1); // b2 never flapped
    console.log(`[ops-health-udp] interval ${HC.interval}s timeout ${HC.timeout}s fall ${HC.fall} rise ${HC.rise}: UDP echo stopped -> b1 down in ${downMs} ms (${String(down[0]!.reason)}), started -> up in ${upMs} ms; UDP probe ${(rtt * 1000).toFixed(2)} ms`);
    expect(downMs).toBeLessThanOrEqual(boundMs(HC.fall));
    expect(upMs).toBeLessThanOrEqual(boundMs(HC.rise));
  }, 90_000);
});
