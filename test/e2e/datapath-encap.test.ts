// Encap modes on the wire: the lab with deploy/lab/front-encap.yaml (6in6, 4in4), then the
// front restarted with front-encap-mixed.yaml (4in6, 6in4); real kernel TCP/UDP/TLS between
// namespaces. Every client lands on the server its source prefix names; the server sees
// source = client, destination = S with valid checksums; between front and back every tunnel packet
// has the configured outer source and the right back as outer destination, protocol 4/41, outer hop
// limit 64, the inner DSCP/ECN byte copied, a non-zero outer flow label (IPv6 outer) that is one per
// inner flow, and inner source = client, inner destination = S with valid inner checksums (tshark);
// protocols 253 and 50 (ESP) arrive at the server byte-identical apart from the hop limit.
// The service label counts what each service was sent (test/helpers/datapath.ts expectServiceCounts).
// Needs root and `npm run build` (the services run from dist/).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/netns.js';
import {
  CLIENTS,
  CLIENT_NAMES,
  Lab,
  sameApartFromHopLimit,
  type Capture,
  type CaptureSummary,
  type ClientName,
  type ServerName,
} from '../helpers/lab.js';
import {
  CLIENT_TRAFFIC,
  backOf,
  captureFields,
  clientPacket,
  dropDelta,
  expectServiceCounts,
  expectedOuter,
  sendScapy,
  serviceOf,
  settledDrops,
  type PacketFields,
} from '../helpers/datapath.js';

const SERVICES = ['front', 'back1', 'back2'] as const;
/** Outer hop limit of deploy/lab/front-encap*.yaml (encap.hopLimit). */
const OUTER_HOP_LIMIT = 64;
/** DSCP/ECN byte each client's scapy UDP carries: EF Not-ECT, AF21 ECT(0), CS1 ECT(1), EF ECT(1). */
const TOS_OF: Record<ClientName, number> = { c1v6: 0xb8, c2v6: 0x4a, c1v4: 0x21, c2v4: 0xb9 };
/** Nothing listens there: the server answers with ICMP port unreachable (not captured), no echo. */
const DSCP_PORT = 9998;

function expectValidChecksums(s: CaptureSummary, where: string): void {
  expect(s.count, `${where}: packets`).toBeGreaterThan(0);
  expect(s.badChecksums, `${where}: bad checksums`).toEqual([]);
  expect(s.goodChecksums, `${where}: checked checksums`).toBeGreaterThanOrEqual(s.count);
  expect(s.unverifiedChecksums, `${where}: unverified checksums`).toBe(0);
}

const clientOf = (addr: string): ClientName | undefined => CLIENT_NAMES.find((n) => CLIENTS[n].address === addr);

describe.skipIf(!isRoot())('data path, encap modes', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'encap' });
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  for (const mode of ['encap', 'encap-mixed'] as const) {
    const mixed = mode === 'encap-mixed';
    const kinds = mixed ? '4in6 and 6in4' : '6in6 and 4in4';

    describe(`${mode} (${kinds})`, () => {
      let dropsAtStart: Record<string, Record<string, number>>;

      beforeAll(async () => {
        if (mixed) await lab.restartFront(mode);
        dropsAtStart = await settledDrops(lab, [...SERVICES]);
      }, 60_000);

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
      }, 60_000);

      it(`between front and back: ${kinds} with the configured outer header, client -> S inside, valid checksums; the server sees client -> S`, async () => {
        const tunnel = 'ip proto 4 or ip proto 41 or ip6 proto 4 or ip6 proto 41 or tcp or udp';
        const links = ['back1', 'back2', 'server1', 'server2'] as const;
        const started = await Promise.all(links.map((l) => lab.capture(`${l}-link`, { filter: l.startsWith('back') ? tunnel : CLIENT_TRAFFIC })));
        const caps = Object.fromEntries(links.map((l, i) => [l, started[i]!])) as Record<(typeof links)[number], Capture>;
        for (const c of CLIENT_NAMES) {
          expect((await lab.curl(c)).ok, `${c} http`).toBe(true);
          expect((await lab.https(c)).ok, `${c} https`).toBe(true);
          expect((await lab.udp(c, { size: 700 })).ok, `${c} udp`).toBe(true);
        }
        // Scapy UDP with DSCP/ECN set: the outer header must carry the same byte.
        const dscp = CLIENT_NAMES.map((c) => clientPacket(c, { tos: TOS_OF[c], upper: `UDP(sport=41000, dport=${DSCP_PORT})/Raw(b'dscp')` }));
        expect((await sendScapy(lab, lab.ns.client, dscp, 2)).length).toBe(2 * CLIENT_NAMES.length);
        const [b1, b2] = await Promise.all([caps.back1.stop(), caps.back2.stop()]);
        const sums = { back1: b1, back2: b2 };
        for (const back of ['back1', 'back2'] as const) {
          expectValidChecksums(sums[back], back);
          const rows = captureFields(lab, caps[back]);
          const tunnels = rows.filter((p) => p.ip.length === 2);
          const labels = new Map<string, Set<number>>();
          const seen = new Set<ClientName>();
          const tosSeen = new Set<number>();
          for (const p of rows) {
            const [o, i] = p.ip as [PacketFields['ip'][0], PacketFields['ip'][0] | undefined];
            const where = `${back} frame ${p.frame}`;
            const last = p.ip[p.ip.length - 1]!;
            // Only the clients' traffic is judged here (the front may also send health probes).
            if (!clientOf(last.src) && !clientOf(last.dst)) continue;
            if (i === undefined) {
              // Plain packets here are the servers' answers (S -> client), routed back by the kernel.
              expect(clientOf(o.dst), `${where}: plain ${o.src} > ${o.dst}`).toBeDefined();
              expect(o.src, where).toBe(serviceOf(clientOf(o.dst)!));
              continue;
            }
            const c = clientOf(i.src);
            expect(c, `${where}: inner source ${i.src}`).toBeDefined();
            seen.add(c!);
            expect(backOf(c!), `${where}: ${c} on the wrong back`).toBe(back);
            expect(i.dst, `${where}: inner destination`).toBe(serviceOf(c!));
            const exp = expectedOuter(c!, mixed);
            expect({ version: o.version, src: o.src, dst: o.dst, proto: o.proto }, `${where}: outer header`).toEqual(exp);
            expect(o.hop, `${where}: outer hop limit`).toBe(OUTER_HOP_LIMIT);
            expect(o.tos, `${where}: outer DSCP/ECN = inner`).toBe(i.tos);
            if (o.version === 6) {
              expect(o.flow, `${where}: outer flow label`).toBeGreaterThan(0);
              // The inner flow: 5-tuple and, for an IPv6 inner packet, its own flow label (RFC 6437;
              // Linux re-randomises it on some retransmissions, and the outer label follows it).
              const flow = `${i.src} ${p.sport} > ${i.dst} ${p.dport}/${i.proto} label ${i.flow}`;
              if (!labels.has(flow)) labels.set(flow, new Set());
              labels.get(flow)!.add(o.flow);
            }
            if (p.dport === DSCP_PORT) tosSeen.add(i.tos);
          }
          expect(tunnels.length, `${back}: tunnel packets`).toBeGreaterThan(0);
          expect([...seen].sort(), `${back}: clients wrapped`).toEqual(CLIENT_NAMES.filter((c) => backOf(c) === back).sort());
          const tosExpected = CLIENT_NAMES.filter((c) => backOf(c) === back).map((c) => TOS_OF[c]);
          expect([...tosSeen].sort(), `${back}: DSCP/ECN bytes carried`).toEqual(tosExpected.sort());
          // RFC 6438: one outer label per inner flow, and different flows spread over different labels.
          for (const [flow, set] of labels) expect(set.size, `${back}: labels of ${flow}`).toBe(1);
          if (labels.size > 0) {
            expect(labels.size, `${back}: IPv6-outer flows`).toBeGreaterThan(3);
            expect(new Set([...labels.values()].map((s) => [...s][0])).size, `${back}: distinct labels`).toBeGreaterThan(1);
          }
        }
        // Every IPv6-outer client had its flows checked above.
        for (const srv of ['server1', 'server2'] as ServerName[]) {
          const s = await caps[srv].stop();
          for (const c of CLIENT_NAMES) {
            const fwd = `${CLIENTS[c].address} > ${serviceOf(c)}`;
            if (lab.expectedServer(c) === srv) {
              expect(s.pairs[fwd], `${srv}: ${fwd}`).toBeGreaterThan(0);
              expect(s.pairs[`${serviceOf(c)} > ${CLIENTS[c].address}`], `${srv}: answers`).toBeGreaterThan(0);
            } else expect(s.pairs[fwd], `${srv} must not see ${fwd}`).toBeUndefined();
          }
          // Unwrapped: one IP header, client <-> S only.
          for (const k of Object.keys(s.protocols)) expect(k, srv).not.toMatch(/ip(v6)?:ip(v6)?:/);
          const allowed = new Set(CLIENT_NAMES.flatMap((c) => [`${CLIENTS[c].address} > ${serviceOf(c)}`, `${serviceOf(c)} > ${CLIENTS[c].address}`]));
          for (const k of Object.keys(s.pairs)) expect(allowed.has(k), `${srv}: unexpected ${k}`).toBe(true);
          expectValidChecksums(s, srv);
          // The DSCP/ECN byte reaches the server as the client sent it.
          const tos = captureFields(lab, caps[srv], `udp.dstport == ${DSCP_PORT}`).map((p) => p.ip[0]!.tos);
          expect(tos.sort(), srv).toEqual(
            CLIENT_NAMES.filter((c) => lab.expectedServer(c) === srv).flatMap((c) => [TOS_OF[c], TOS_OF[c]]).sort(),
          );
        }
      }, 120_000);

      it('protocols 253 and 50 (ESP, random payload) arrive at the server byte-identical apart from the hop limit', async () => {
        const filter = 'ip proto 253 or ip6 proto 253 or ip proto 50 or ip6 proto 50';
        const [c1, c2] = await Promise.all([lab.capture('server1-link', { filter }), lab.capture('server2-link', { filter })]);
        const caps = { server1: c1, server2: c2 };
        const sent: Record<ServerName, Uint8Array[]> = { server1: [], server2: [] };
        // Through lab.sendRaw (one scapy process per client; fresh random payload per packet).
        await Promise.all(
          CLIENT_NAMES.map(async (c) => {
            const proto = c.startsWith('c1') ? 253 : 50;
            sent[lab.expectedServer(c)].push(...(await lab.sendRaw(c, { proto, count: 3, size: CLIENTS[c].family === 'ipv6' ? 1000 : 301 })));
          }),
        );
        for (const srv of ['server1', 'server2'] as ServerName[]) {
          const got = await caps[srv].stopPackets();
          expect(got.length, `${srv}: packets`).toBe(sent[srv].length);
          for (const [i, p] of sent[srv].entries()) {
            expect(got.some((g) => sameApartFromHopLimit(p, g)), `${srv}: sent packet ${i}`).toBe(true);
          }
        }
      }, 60_000);

      it('the service label counts the traffic sent to each of the two services, at the front and at the back that unwrapped it', async () => {
        await expectServiceCounts(lab);
      }, 30_000);

      it('legitimate traffic cost no drop at the front or the backs', async () => {
        const now = await settledDrops(lab, [...SERVICES]);
        for (const s of SERVICES) expect(dropDelta(dropsAtStart[s]!, now[s]!), s).toEqual({});
      }, 30_000);
    });
  }
});
