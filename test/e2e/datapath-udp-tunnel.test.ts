// IP-in-UDP tunnels on the wire: the lab with deploy/lab/front-encap-udp.yaml (6in6, 4in4 over UDP
// port 6080) and backs with udpPort 6080, then the front restarted with front-encap-mixed-udp.yaml
// (4in6, 6in4 over UDP); real kernel TCP (HTTP, HTTPS, openssl TLS) and UDP between namespaces.
// tshark judges the front-back links with checksum validation on and the port decoded as the inner
// IP packet (-d udp.port==6080,ip: Wireshark's IPv4 dissector hands a version-6 packet to IPv6):
// every outer UDP checksum and every inner TCP/UDP/IP checksum right, UDP to 6080 from a source
// port in 49152-65535 that is one per inner flow (with its label) and differs across flows, outer header as the
// front's config says. The servers see client -> S, and raw packets arrive byte-identical apart
// from the hop limit. Needs root and `npm run build` (the services run from dist/).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/netns.js';
import { CLIENTS, CLIENT_NAMES, Lab, sameApartFromHopLimit, type Capture, type CaptureSummary, type ClientName, type ServerName } from '../helpers/lab.js';
import { CLIENT_TRAFFIC, backOf, dropDelta, expectedOuter, serviceOf, settledDrops } from '../helpers/datapath.js';

const PORT = 6080;
const SERVICES = ['front', 'back1', 'back2'] as const;
const BACKS = { back1: 'deploy/lab/back1-udp.yaml', back2: 'deploy/lab/back2-udp.yaml' };
const CONFIG = { encap: 'deploy/lab/front-encap-udp.yaml', 'encap-mixed': 'deploy/lab/front-encap-mixed-udp.yaml' } as const;

interface TunnelRow {
  frame: number;
  protocols: string;
  outerSrc: string;
  outerDst: string;
  sport: number;
  dport: number;
  /**
   * Inner addresses, ports and (IPv6) flow label: the inner flow as the source port hashes it (the
   * label too, as RFC 6438 does for the outer label: Linux re-randomises it on some retransmissions
   * to move a connection off a bad path, and the tunnel follows).
   */
  inner: string;
  /** Checksum status values tshark gave (1 good, 0 bad, 2 unverified), per layer. */
  status: Record<string, string[]>;
}

const LAYERS = ['ip', 'tcp', 'udp', 'icmp', 'icmpv6'] as const;
const FIELDS = ['frame.number', 'frame.protocols', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'ipv6.flow', 'udp.srcport', 'udp.dstport', 'tcp.srcport', 'tcp.dstport', ...LAYERS.map((l) => `${l}.checksum.status`)];

/** The tunnel packets (UDP to PORT) of a stopped capture, the inner packet decoded by tshark. */
function tunnelRows(lab: Lab, cap: Capture): TunnelRow[] {
  const out = lab.set.exec(
    cap.end.ns,
    'tshark',
    [
      '-n', '-r', cap.file, '-d', `udp.port==${PORT},ip`,
      '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-Y', `udp.dstport == ${PORT}`,
      '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...FIELDS.flatMap((f) => ['-e', f]),
    ],
    { timeoutMs: 60_000 },
  );
  const rows: TunnelRow[] = [];
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const col = line.split('\t');
    const get = (f: string): string[] => (col[FIELDS.indexOf(f)] ? col[FIELDS.indexOf(f)]!.split(',') : []);
    const protocols = col[1]!.replace(/^.*?(?=\bip(v6)?:)/, ''); // from the outer IP header on (no eth:ethertype)
    // the outer header is the first IP layer tshark names
    const outer6 = protocols.startsWith('ipv6');
    const [v4s, v4d, v6s, v6d] = [get('ip.src'), get('ip.dst'), get('ipv6.src'), get('ipv6.dst')];
    const outerSrc = outer6 ? v6s.shift()! : v4s.shift()!;
    const outerDst = outer6 ? v6d.shift()! : v4d.shift()!;
    const labels = get('ipv6.flow');
    if (outer6) labels.shift();
    const usp = get('udp.srcport'), udp = get('udp.dstport');
    const status: Record<string, string[]> = {};
    LAYERS.forEach((l) => { status[l] = get(`${l}.checksum.status`); });
    rows.push({
      frame: Number(col[0]), protocols, outerSrc, outerDst, sport: Number(usp[0]), dport: Number(udp[0]),
      inner: [...v4s, ...v4d, ...v6s, ...v6d, ...usp.slice(1), ...udp.slice(1), ...get('tcp.srcport'), ...get('tcp.dstport'), ...labels.map((l) => `label ${l}`)].join(' '),
      status,
    });
  }
  return rows;
}

function expectValidChecksums(s: CaptureSummary, where: string): void {
  expect(s.count, `${where}: packets`).toBeGreaterThan(0);
  expect(s.badChecksums, `${where}: bad checksums`).toEqual([]);
  expect(s.goodChecksums, `${where}: checked checksums`).toBeGreaterThanOrEqual(s.count);
}

describe.skipIf(!isRoot())('data path, encap over UDP (IP-in-UDP)', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'encap', frontConfig: CONFIG.encap, backConfigs: BACKS });
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  for (const mode of ['encap', 'encap-mixed'] as const) {
    const mixed = mode === 'encap-mixed';
    const kinds = mixed ? '4in6 and 6in4' : '6in6 and 4in4';

    describe(`${kinds} over UDP`, () => {
      let dropsAtStart: Record<string, Record<string, number>>;
      beforeAll(async () => {
        if (mixed) await lab.restartFront(CONFIG[mode]);
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

      it('tshark on the front-back links: UDP to 6080, outer and inner checksums right, one source port per flow and many across flows; the server sees client -> S', async () => {
        const links = ['back1', 'back2', 'server1', 'server2'] as const;
        const started = await Promise.all(links.map((l) => lab.capture(`${l}-link`, { filter: l.startsWith('back') ? 'udp or tcp' : CLIENT_TRAFFIC })));
        const caps = Object.fromEntries(links.map((l, i) => [l, started[i]!])) as Record<(typeof links)[number], Capture>;
        for (const c of CLIENT_NAMES) {
          for (let k = 0; k < 3; k++) expect((await lab.curl(c)).ok, `${c} http`).toBe(true);
          expect((await lab.https(c)).ok, `${c} https`).toBe(true);
          expect((await lab.udp(c, { size: 700 })).ok, `${c} udp`).toBe(true);
        }
        for (const back of ['back1', 'back2'] as const) {
          expectValidChecksums(await caps[back].stop(), back); // the outer UDP checksums, undecoded
          const rows = tunnelRows(lab, caps[back]);
          const ports = new Map<string, Set<number>>();
          const seen = new Set<ClientName>();
          for (const r of rows) {
            const where = `${back} frame ${r.frame} (${r.protocols})`;
            const c = CLIENT_NAMES.find((n) => r.inner.startsWith(`${CLIENTS[n].address} `) || r.inner.includes(` ${CLIENTS[n].address} `));
            if (c === undefined) continue; // e.g. health probes: judged by their checksums below only
            seen.add(c);
            expect(backOf(c), `${where}: ${c} on the wrong back`).toBe(back);
            const exp = expectedOuter(c, mixed);
            expect({ src: r.outerSrc, dst: r.outerDst }, `${where}: outer addresses`).toEqual({ src: exp.src, dst: exp.dst });
            expect(r.protocols, where).toMatch(mixed ? (exp.version === 6 ? /^ipv6:udp:ip:(tcp|udp)/ : /^ip:udp:ip:ipv6:(tcp|udp)/) : exp.version === 6 ? /^ipv6:udp:ip:ipv6:(tcp|udp)/ : /^ip:udp:ip:(tcp|udp)/);
            expect(r.dport, where).toBe(PORT);
            expect(r.sport, where).toBeGreaterThanOrEqual(49152);
            // every checksum tshark could check is right: outer UDP, inner IPv4 header, inner TCP/UDP
            for (const l of LAYERS) for (const st of r.status[l]!) expect(st, `${where}: ${l} checksum`).not.toBe('0');
            expect(r.status.udp![0], `${where}: outer UDP checksum verified`).toBe('1');
            if (r.protocols.endsWith('tcp') || r.protocols.includes(':tcp')) expect(r.status.tcp, `${where}: inner TCP checksum verified`).toEqual(['1']);
            if (!ports.has(r.inner)) ports.set(r.inner, new Set());
            ports.get(r.inner)!.add(r.sport);
          }
          expect([...seen].sort(), `${back}: clients tunnelled`).toEqual(CLIENT_NAMES.filter((c) => backOf(c) === back).sort());
          for (const [flow, set] of ports) expect(set.size, `${back}: source ports of ${flow}`).toBe(1);
          expect(ports.size, `${back}: flows`).toBeGreaterThan(6);
          expect(new Set([...ports.values()].map((s) => [...s][0])).size, `${back}: distinct source ports`).toBeGreaterThan(ports.size / 2);
        }
        for (const srv of ['server1', 'server2'] as ServerName[]) {
          const s = await caps[srv].stop();
          for (const c of CLIENT_NAMES) {
            const fwd = `${CLIENTS[c].address} > ${serviceOf(c)}`;
            if (lab.expectedServer(c) === srv) expect(s.pairs[fwd], `${srv}: ${fwd}`).toBeGreaterThan(0);
            else expect(s.pairs[fwd], `${srv} must not see ${fwd}`).toBeUndefined();
          }
          for (const k of Object.keys(s.protocols)) expect(k, srv).not.toMatch(/udp:ip/);
          expectValidChecksums(s, srv);
        }
      }, 120_000);

      it('raw packets (protocol 253, and UDP) arrive at the server byte-identical apart from the hop limit', async () => {
        const filter = 'ip proto 253 or ip6 proto 253 or udp dst port 9';
        const [c1, c2] = await Promise.all([lab.capture('server1-link', { filter }), lab.capture('server2-link', { filter })]);
        const caps = { server1: c1, server2: c2 };
        const sent: Record<ServerName, Uint8Array[]> = { server1: [], server2: [] };
        await Promise.all(
          CLIENT_NAMES.map(async (c) => {
            const big = CLIENTS[c].family === 'ipv6' ? 1000 : 301;
            sent[lab.expectedServer(c)].push(...(await lab.sendRaw(c, { proto: 253, count: 2, size: big })));
            sent[lab.expectedServer(c)].push(...(await lab.sendRaw(c, { upper: `UDP(sport=41000, dport=9)/Raw(b'u' * 333)`, count: 2 })));
          }),
        );
        for (const srv of ['server1', 'server2'] as ServerName[]) {
          const got = await caps[srv].stopPackets();
          expect(got.length, `${srv}: packets`).toBe(sent[srv].length);
          for (const [i, p] of sent[srv].entries()) expect(got.some((g) => sameApartFromHopLimit(p, g)), `${srv}: sent packet ${i}`).toBe(true);
        }
      }, 60_000);

      it('legitimate traffic cost no drop at the front or the backs', async () => {
        const now = await settledDrops(lab, [...SERVICES]);
        for (const s of SERVICES) expect(dropDelta(dropsAtStart[s]!, now[s]!), s).toEqual({});
      }, 30_000);
    });
  }
});
