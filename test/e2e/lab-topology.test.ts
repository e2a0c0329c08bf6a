// The lab harness itself, without the services (kernel-only: the front routes S to back1 with a
// plain route): traffic from every client address reaches server1 over real kernel TCP/UDP/TLS,
// captures judged by tshark show source = client, destination = S and valid checksums when tx
// checksum offload is off, the judge catches a wrong checksum and partial checksums, raw packets
// arrive byte-identical apart from hop limit, and everything is gone after stop().
// Needs root and `npm run build` (the lab servers run from dist/).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import {
  CLIENTS,
  CLIENT_NAMES,
  Lab,
  S4,
  S6,
  listNetns,
  sameApartFromHopLimit,
  serviceFor,
  setTxChecksumOffload,
} from '../helpers/lab.js';

describe.skipIf(!isRoot())('lab topology, kernel-only', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'kernel-only' });
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  it('HTTP, HTTPS, openssl TLS and UDP from every client address reach server1 with the client as source', async () => {
    for (const c of CLIENT_NAMES) {
      const addr = CLIENTS[c].address;
      const http = await lab.curl(c);
      expect(http, `${c} http`).toMatchObject({ ok: true, server: 'server1', sawSource: addr });
      const https = await lab.https(c);
      expect(https, `${c} https`).toMatchObject({ ok: true, server: 'server1', sawSource: addr });
      const tls = await lab.tls(c);
      expect(tls, `${c} openssl`).toMatchObject({ ok: true, server: 'server1' });
      expect(tls.detail).toMatch(/^TLSv1\.[23] /);
      const u = await lab.udp(c);
      expect(u, `${c} udp`).toMatchObject({ ok: true, server: 'server1', sawSource: addr });
    }
  }, 60_000);

  it('a client that is not routed gets no answer (the clients can fail)', async () => {
    // A destination the client has no route to: the helpers report failure (bounded), never hang.
    const r = await lab.curl('c1v6', { dst: '2001:db8:5::81', timeoutMs: 1500 });
    expect(r.ok).toBe(false);
    const u = await lab.udp('c1v4', { dst: '192.0.2.81', timeoutMs: 1500 });
    expect(u.ok).toBe(false);
  }, 20_000);

  it('captures at the server link and between front and back1 show client -> S with valid checksums (tx offload off)', async () => {
    const atServer = await lab.capture('server1-link', { filter: 'tcp or udp' });
    const atBack = await lab.capture('back1-link', { filter: 'tcp or udp' });
    for (const c of CLIENT_NAMES) {
      expect((await lab.curl(c)).ok).toBe(true);
      expect((await lab.udp(c, { size: 700 })).ok).toBe(true);
    }
    for (const cap of [atServer, atBack]) {
      const s = await cap.stop();
      for (const c of CLIENT_NAMES) {
        const fwd = `${CLIENTS[c].address} > ${serviceFor(CLIENTS[c].family)}`;
        const back = `${serviceFor(CLIENTS[c].family)} > ${CLIENTS[c].address}`;
        expect(s.pairs[fwd], `${cap.end.ns} ${fwd}`).toBeGreaterThan(0);
        expect(s.pairs[back], `${cap.end.ns} ${back}`).toBeGreaterThan(0);
      }
      // Nothing but client <-> S on these links.
      for (const k of Object.keys(s.pairs)) expect(k).toMatch(new RegExp(`(${S6}|${S4.replace(/\./g, '\\.')})`));
      expect(s.badChecksums).toEqual([]);
      // Every TCP/UDP packet and every IPv4 header was verified, not merely "unverified".
      expect(s.goodChecksums).toBeGreaterThanOrEqual(s.count);
      expect(s.unverifiedChecksums).toBe(0);
    }
  }, 60_000);

  it('the judge catches a wrong checksum on the wire', async () => {
    const cap = await lab.capture('server1-link', { filter: 'udp port 4999' });
    await lab.sendRaw('c1v6', { upper: "UDP(sport=4000, dport=4999, chksum=0x1234)/Raw(b'x'*20)" });
    await lab.sendRaw('c1v4', { upper: "UDP(sport=4000, dport=4999, chksum=0x1234)/Raw(b'x'*20)" });
    const s = await cap.stop();
    expect(s.count).toBe(2);
    expect(s.badChecksums.map((b) => b.layer).sort()).toEqual(['udp', 'udp']);
    expect(s.badChecksums.map((b) => b.src).sort()).toEqual([CLIENTS.c1v4.address, CLIENTS.c1v6.address].sort());
  }, 30_000);

  it('with tx offload on, locally sent packets carry partial checksums: a capture without offload off cannot judge', async () => {
    // Measured finding (not a product defect): veth keeps CHECKSUM_PARTIAL, so the captured checksum
    // field holds only the pseudo-header sum and tshark reports it as bad. The capture helper turns
    // offload off for that reason; this test keeps that reason visible.
    const link = lab.topo.linkOf('client-link');
    setTxChecksumOffload(lab.set, link.near, true);
    setTxChecksumOffload(lab.set, link.far, true);
    const cap = await lab.capture('client-link', { filter: 'tcp', txOff: false });
    expect((await lab.curl('c1v6')).ok).toBe(true);
    expect((await lab.curl('c1v4')).ok).toBe(true);
    const s = await cap.stop();
    expect(s.count).toBeGreaterThan(0);
    expect(s.badChecksums.filter((b) => b.layer === 'tcp').length).toBeGreaterThan(0);
  }, 30_000);

  it('an unknown protocol (253, random payload) arrives byte-identical apart from the hop limit', async () => {
    const cap = await lab.capture('server1-link', { filter: 'ip proto 253 or ip6 proto 253' });
    const sent = [...(await lab.sendRaw('c1v6', { count: 3, size: 200 })), ...(await lab.sendRaw('c2v4', { count: 3, size: 1000 }))];
    const got = await cap.stopPackets();
    expect(got.length).toBe(sent.length);
    for (const p of sent) expect(got.some((g) => sameApartFromHopLimit(p, g))).toBe(true);
    // Sent with hop limit 64, forwarded by the front and back1: 62 at the server, so the packets did
    // cross two routers; and one flipped payload bit is noticed, so the comparison is not vacuous.
    for (const g of got) expect(g[0]! >> 4 === 6 ? g[7] : g[8]).toBe(62);
    const flipped = Uint8Array.from(sent[0]!, (b, i) => (i === sent[0]!.length - 1 ? b ^ 1 : b));
    expect(sameApartFromHopLimit(sent[0]!, flipped)).toBe(false);
  }, 30_000);

  it('service plumbing: start from a deploy/lab config, wait for /readyz, read /metrics, stop', async () => {
    // A stand-in for mslb-front (the real one is tested in its own e2e files): admin on the config's
    // admin.listen inside the front namespace, not ready for its first 300 ms.
    const fake = join(lab.workDir, 'fake-service.mjs');
    writeFileSync(
      fake,
      `import http from 'node:http'; import fs from 'node:fs';
const cfg = fs.readFileSync(process.argv[process.argv.indexOf('--config') + 1], 'utf8');
const m = /listen:\\s*"\\[([^\\]]+)\\]:(\\d+)"/.exec(cfg);
const t0 = Date.now();
http.createServer((q, r) => {
  if (q.url === '/readyz') { r.statusCode = Date.now() - t0 > 300 ? 200 : 503; r.end(); }
  else if (q.url === '/metrics') r.end('# TYPE mslb_drops_total counter\\nmslb_drops_total{reason="no_route"} 3\\nmslb_drops_total{reason="malformed"} 0\\nmslb_backend_packets_total{backend="b1"} 5\\nmslb_backend_packets_total{backend="b2"} 7\\n');
  else { r.statusCode = 404; r.end(); }
}).listen(Number(m[2]), m[1]);
process.on('SIGTERM', () => process.exit(0));
`,
    );
    const t0 = Date.now();
    await lab.startService('front', 'deploy/lab/front-translate.yaml', fake);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(await lab.metric('front', 'mslb_drops_total', { reason: 'no_route' })).toBe(3);
    expect(await lab.metric('front', 'mslb_backend_packets_total')).toBe(12);
    expect(await lab.metric('front', 'mslb_drops_total', { reason: 'hop_limit' })).toBeNaN();
    expect((await lab.adminGet('front', '/table')).status).toBe(404);
    expect(await lab.stopService('front')).toBe(0);
    // A service that dies before it is ready is reported at once, with its exit.
    writeFileSync(fake, 'process.exit(3);\n');
    await expect(lab.startService('front', 'deploy/lab/front-translate.yaml', fake)).rejects.toThrow(/exited \(3\)/);
    await lab.stopService('front');
  }, 30_000);

  it('stop() removes every namespace, process and file of the lab', async () => {
    const names = [...lab.set.namespaces];
    const procs: ChildProcess[] = [...lab.set.processes];
    const dir = lab.workDir;
    expect(names.length).toBe(6);
    expect(procs.length).toBeGreaterThanOrEqual(6);
    for (const n of names) expect(listNetns()).toContain(n);
    await lab.stop();
    const after = listNetns();
    for (const n of names) expect(after).not.toContain(n);
    for (const p of procs) expect(p.exitCode !== null || p.signalCode !== null, `pid ${p.pid}`).toBe(true);
    for (const p of procs) expect(() => process.kill(p.pid!, 0)).toThrow();
    expect(existsSync(dir)).toBe(false);
  }, 30_000);
});
