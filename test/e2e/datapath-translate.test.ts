// Translate mode on the wire: the lab (deploy/lab/front-translate.yaml, back1/back2.yaml)
// with real kernel TCP/UDP/TLS between namespaces. Every client lands on the server its source prefix
// names; the server sees source = client, destination = S with valid checksums; between front and back
// the packets carry destination = B with valid checksums; protocols mslb does not know (253, ESP) and
// scapy-built UDP/TCP arrive byte-identical apart from the hop limit. Checksums are judged by tshark
// on links with tx checksum offload off, once with offload on up to the server link (the front and the
// backs get NEEDS_CSUM partial sums from the kernel) and once with it off everywhere (full sums).
// The service label counts what each service was sent (test/helpers/datapath.ts expectServiceCounts).
// Needs root and `npm run build` (the services run from dist/).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/netns.js';
import {
  BACKS,
  CLIENTS,
  CLIENT_NAMES,
  Lab,
  sameApartFromHopLimit,
  setTxChecksumOffload,
  type Capture,
  type CaptureSummary,
  type ClientName,
  type ServerName,
} from '../helpers/lab.js';
import { CLIENT_TRAFFIC, addrOf, backOf, captureFields, clientPacket, dropDelta, expectServiceCounts, sendScapy, serviceOf, settledDrops } from '../helpers/datapath.js';

const SERVICES = ['front', 'back1', 'back2'] as const;

function bOf(c: ClientName): string {
  const b = BACKS[backOf(c)];
  return CLIENTS[c].family === 'ipv6' ? b.v6 : b.v4;
}

/** Valid checksums throughout: none bad, every packet had at least one checked, none unverifiable. */
function expectValidChecksums(s: CaptureSummary, where: string): void {
  expect(s.count, `${where}: packets`).toBeGreaterThan(0);
  expect(s.badChecksums, `${where}: bad checksums`).toEqual([]);
  expect(s.goodChecksums, `${where}: checked checksums`).toBeGreaterThanOrEqual(s.count);
  expect(s.unverifiedChecksums, `${where}: unverified checksums`).toBe(0);
}

describe.skipIf(!isRoot())('data path, translate mode', () => {
  let lab: Lab;
  let dropsAtStart: Record<string, Record<string, number>>;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'translate' });
    dropsAtStart = await settledDrops(lab, [...SERVICES]);
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  it('HTTP, HTTPS, openssl TLS and UDP from every client land on the server its source prefix names, client as source', async () => {
    for (const c of CLIENT_NAMES) {
      const exp = lab.expectedServer(c);
      const addr = CLIENTS[c].address;
      expect(await lab.curl(c), `${c} http`).toMatchObject({ ok: true, server: exp, sawSource: addr });
      expect(await lab.https(c), `${c} https`).toMatchObject({ ok: true, server: exp, sawSource: addr });
      const tls = await lab.tls(c);
      expect(tls, `${c} openssl s_client`).toMatchObject({ ok: true, server: exp });
      expect(tls.detail).toMatch(/^TLSv1\.[23] /);
      expect(await lab.udp(c), `${c} udp`).toMatchObject({ ok: true, server: exp, sawSource: addr });
    }
    // The front decided by source prefix and sent to both backs.
    expect(await lab.metric('front', 'mslb_decisions_total', { reason: 'source_prefix' })).toBeGreaterThan(0);
    expect(await lab.metric('front', 'mslb_backend_packets_total', { backend: 'b1' })).toBeGreaterThan(0);
    expect(await lab.metric('front', 'mslb_backend_packets_total', { backend: 'b2' })).toBeGreaterThan(0);
  }, 60_000);

  it('partial-checksum path (tx offload on up to the server link): the servers see client -> S with valid checksums', async () => {
    // Offload stays on at the client and back links, so the kernel hands the front and the backs
    // CHECKSUM_PARTIAL packets (virtio NEEDS_CSUM); the server link is the first where sums are final.
    const [s1, s2] = await Promise.all([lab.capture('server1-link', { filter: CLIENT_TRAFFIC }), lab.capture('server2-link', { filter: CLIENT_TRAFFIC })]);
    const caps = { server1: s1, server2: s2 };
    for (const c of CLIENT_NAMES) {
      expect((await lab.curl(c)).ok, `${c} http`).toBe(true);
      expect((await lab.https(c)).ok, `${c} https`).toBe(true);
      expect((await lab.udp(c, { size: 700 })).ok, `${c} udp`).toBe(true);
    }
    for (const srv of ['server1', 'server2'] as ServerName[]) {
      const s = await caps[srv].stop();
      for (const c of CLIENT_NAMES) {
        const fwd = `${CLIENTS[c].address} > ${serviceOf(c)}`;
        const back = `${serviceOf(c)} > ${CLIENTS[c].address}`;
        if (lab.expectedServer(c) === srv) {
          expect(s.pairs[fwd], `${srv}: ${fwd}`).toBeGreaterThan(0);
          expect(s.pairs[back], `${srv}: ${back}`).toBeGreaterThan(0);
        } else {
          expect(s.pairs[fwd], `${srv} must not see ${fwd}`).toBeUndefined();
        }
      }
      // Only client <-> S at the server: no B address, nothing else.
      const allowed = new Set(CLIENT_NAMES.flatMap((c) => [`${CLIENTS[c].address} > ${serviceOf(c)}`, `${serviceOf(c)} > ${CLIENTS[c].address}`]));
      for (const k of Object.keys(s.pairs)) expect(allowed.has(k), `${srv}: unexpected ${k}`).toBe(true);
      expectValidChecksums(s, srv);
    }
  }, 90_000);

  it('full-checksum path (tx offload off everywhere): front -> back carries dst = B, the server client -> S, all checksums valid', async () => {
    const cl = lab.topo.linkOf('client-link');
    setTxChecksumOffload(lab.set, cl.near, false);
    setTxChecksumOffload(lab.set, cl.far, false);
    const links = ['back1', 'back2', 'server1', 'server2'] as const;
    const started = await Promise.all(links.map((l) => lab.capture(`${l}-link`, { filter: CLIENT_TRAFFIC })));
    const caps = Object.fromEntries(links.map((l, i) => [l, started[i]!])) as Record<(typeof links)[number], Capture>;
    for (const c of CLIENT_NAMES) {
      expect((await lab.curl(c)).ok, `${c} http`).toBe(true);
      expect((await lab.tls(c)).ok, `${c} openssl`).toBe(true);
      expect((await lab.udp(c, { size: 900 })).ok, `${c} udp`).toBe(true);
    }
    for (const back of ['back1', 'back2'] as const) {
      const s = await caps[back].stop();
      for (const c of CLIENT_NAMES) {
        const toB = `${CLIENTS[c].address} > ${bOf(c)}`;
        const toS = `${CLIENTS[c].address} > ${serviceOf(c)}`;
        if (backOf(c) === back) expect(s.pairs[toB], `${back}: ${toB}`).toBeGreaterThan(0);
        else expect(s.pairs[toB], `${back} must not see ${toB}`).toBeUndefined();
        // Translated: no packet toward S between front and back (return traffic S -> client is plain routing).
        expect(s.pairs[toS], `${back}: untranslated ${toS}`).toBeUndefined();
      }
      expectValidChecksums(s, back);
      // Per packet (tshark fields): one IP header (no tunnel in translate mode); from a client, the
      // destination is B of the right back.
      const all = captureFields(lab, caps[back]);
      expect(all.length).toBe(s.count);
      let fromClients = 0;
      for (const p of all) {
        expect(p.ip.length, `${back} frame ${p.frame}: one IP header`).toBe(1);
        const c = CLIENT_NAMES.find((n) => CLIENTS[n].address === p.ip[0]!.src);
        if (c === undefined) continue;
        fromClients++;
        expect(p.ip[0]!.dst, `${back} frame ${p.frame} from ${c}`).toBe(bOf(c));
      }
      expect(fromClients, back).toBeGreaterThan(0);
    }
    for (const srv of ['server1', 'server2'] as ServerName[]) {
      const s = await caps[srv].stop();
      for (const c of CLIENT_NAMES) {
        const fwd = `${CLIENTS[c].address} > ${serviceOf(c)}`;
        if (lab.expectedServer(c) === srv) expect(s.pairs[fwd], `${srv}: ${fwd}`).toBeGreaterThan(0);
        else expect(s.pairs[fwd], `${srv} must not see ${fwd}`).toBeUndefined();
      }
      expectValidChecksums(s, srv);
    }
  }, 120_000);

  it('protocols 253 and 50 (ESP, random payload) and scapy UDP/TCP arrive byte-identical apart from the hop limit', async () => {
    const filter = 'ip proto 253 or ip6 proto 253 or ip proto 50 or ip6 proto 50 or udp dst port 9999 or tcp dst port 9999';
    const [c1, c2] = await Promise.all([lab.capture('server1-link', { filter }), lab.capture('server2-link', { filter })]);
    const caps = { server1: c1, server2: c2 };
    // One scapy process sends everything (fresh random payload per packet) through raw sockets.
    const exprs: string[] = [];
    for (const c of CLIENT_NAMES) {
      for (let i = 0; i < 2; i++) {
        exprs.push(clientPacket(c, { proto: 253, size: 200 }));
        exprs.push(clientPacket(c, { proto: 50, size: CLIENTS[c].family === 'ipv6' ? 1200 : 333 }));
      }
    }
    for (const c of ['c1v6', 'c2v4'] as ClientName[]) {
      exprs.push(clientPacket(c, { upper: 'UDP(sport=40001, dport=9999)/Raw(bytes(range(256))*2)' }));
      exprs.push(clientPacket(c, { upper: "TCP(sport=40002, dport=9999, flags='S', seq=12345, options=[('MSS', 1400)])" }));
    }
    const sent: Record<ServerName, Uint8Array[]> = { server1: [], server2: [] };
    for (const p of await sendScapy(lab, lab.ns.client, exprs)) {
      const src = p[0]! >> 4 === 6 ? addrOf(p, 8, 16) : addrOf(p, 12, 4);
      sent[lab.expectedServer(CLIENT_NAMES.find((n) => CLIENTS[n].address === src)!)].push(p);
    }
    expect(sent.server1.length + sent.server2.length).toBe(exprs.length);
    for (const srv of ['server1', 'server2'] as ServerName[]) {
      const got = await caps[srv].stopPackets();
      expect(got.length, `${srv}: packets`).toBe(sent[srv].length);
      for (const [i, p] of sent[srv].entries()) {
        expect(got.some((g) => sameApartFromHopLimit(p, g)), `${srv}: sent packet ${i} (proto ${p[0]! >> 4 === 6 ? p[6] : p[9]})`).toBe(true);
      }
    }
  }, 90_000);

  it('the service label counts the traffic sent to each of the two services, at the front and at the back that carried it', async () => {
    await expectServiceCounts(lab);
  }, 30_000);

  it('legitimate traffic cost no drop at the front or the backs', async () => {
    const now = await settledDrops(lab, [...SERVICES]);
    for (const s of SERVICES) expect(dropDelta(dropsAtStart[s]!, now[s]!), s).toEqual({});
  }, 30_000);
});
