// The back's refusals on the wire (SPEC 4, 6a): packets crafted with scapy in the front's
// namespace and sent over the front-back1 link to back1, which runs deploy/lab/back1.yaml plus two
// extra prefixes routed into its TUN that it does not list among its addresses. Each refusal is a
// counted drop — mslb_drops_total{reason} at back1 rises by exactly the number sent and nothing else
// moves — and nothing reaches the server; a well-formed tunnel packet from an allowed front, crafted
// the same way, does reach it (so the refusals are the back's doing, not the crafting's). Tunnel
// packets from strangers are refused by a back in `mode: encap`; in `mode: auto` (the default) they
// are translated like any packet (SPEC 6) and reach the server still wrapped.
// Needs root and `npm run build` (the services run from dist/).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { isRoot } from '../helpers/netns.js';
import { BACKS, BACK_CONFIGS, CLIENTS, LINKS, Lab, S4, S6, sameApartFromHopLimit } from '../helpers/lab.js';
import { repoRoot } from '../../lab/paths.js';
import { dropDelta, drops, sendScapy, settledDrops } from '../helpers/datapath.js';

/** Packets per case. */
const N = 5;
const B6 = BACKS.back1.v6;
const B4 = BACKS.back1.v4;
/** Routed into back1's TUN by the test's config, owned by nobody. */
const EXTRA6 = { prefix: '2001:db8:b:99::/64', addr: '2001:db8:b:99::5' };
const EXTRA4 = { prefix: '198.51.100.192/26', addr: '198.51.100.200' };
const C6 = CLIENTS.c1v6.address;
const C4 = CLIENTS.c1v4.address;

/** Inner client -> dst UDP packet (scapy expression) to `port`, the case's marker. */
const inner6 = (dst: string, port: number): string => `IPv6(src='${C6}', dst='${dst}', hlim=64)/UDP(sport=42000, dport=${port})/Raw(b'mslb-refusal-test')`;
const inner4 = (dst: string, port: number): string => `IP(src='${C4}', dst='${dst}', ttl=64, flags='DF')/UDP(sport=42000, dport=${port})/Raw(b'mslb-refusal-test')`;

describe.skipIf(!isRoot())('back refusals (counted drops, nothing reaches the server)', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'encap' });
    // back1 again, with two prefixes routed into its TUN that none of its addresses names.
    const cfg = parseYaml(readFileSync(join(repoRoot(), BACK_CONFIGS.back1), 'utf8')) as { tun: { routes: string[] } };
    cfg.tun.routes = [...cfg.tun.routes, EXTRA6.prefix, EXTRA4.prefix];
    const file = join(lab.workDir, 'back1-extra-routes.yaml');
    writeFileSync(file, stringifyYaml(cfg));
    await lab.stopService('back1');
    await lab.startService('back1', file);
    // The front namespace reaches them over the back1 link, like B.
    lab.set.ip(lab.ns.front, `route replace ${EXTRA6.prefix} via ${LINKS.back1.v6[1]}`);
    lab.set.ip(lab.ns.front, `route replace ${EXTRA4.prefix} via ${LINKS.back1.v4[1]}`);
    await settledDrops(lab, ['back1', 'back2']);
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  /** Each case from the front namespace (outer header src -> dst, then `upper`), N times; the bytes sent. */
  function send(cases: { src: string; dst: string; upper: string }[]): Promise<Uint8Array[]> {
    const exprs = cases.map(({ src, dst, upper }) =>
      src.includes(':') ? `IPv6(src='${src}', dst='${dst}', hlim=64)/${upper}` : `IP(src='${src}', dst='${dst}', ttl=64)/${upper}`,
    );
    return sendScapy(lab, lab.ns.front, exprs, N);
  }

  /**
   * Capture at both servers, send, and return what reached them (UDP to `port`) and how back1's and
   * back2's drop counters moved.
   */
  async function run(port: number, cases: { src: string; dst: string; upper: string }[]) {
    const before = { back1: await drops(lab, 'back1'), back2: await drops(lab, 'back2') };
    const filter = `udp dst port ${port}`;
    const [c1, c2] = await Promise.all([lab.capture('server1-link', { filter }), lab.capture('server2-link', { filter })]);
    const sent = await send(cases);
    const [server1, server2] = await Promise.all([c1.stopPackets(), c2.stopPackets()]);
    const got = { server1, server2 };
    const after = { back1: await drops(lab, 'back1'), back2: await drops(lab, 'back2') };
    return { sent, got, delta: { back1: dropDelta(before.back1, after.back1), back2: dropDelta(before.back2, after.back2) } };
  }

  it('control: tunnel packets from an allowed front (6in6, 4in4, 4in6, 6in4) to its service reach the server, inner bytes intact', async () => {
    const port = 5000;
    const cases = [
      { src: S6, dst: B6, upper: inner6(S6, port) },
      { src: S4, dst: B4, upper: inner4(S4, port) },
      { src: S6, dst: B6, upper: inner4(S4, port) },
      { src: S4, dst: B4, upper: inner6(S6, port) },
    ];
    const r = await run(port, cases);
    expect(r.delta).toEqual({ back1: {}, back2: {} });
    expect(r.got.server2).toEqual([]);
    expect(r.got.server1.length).toBe(cases.length * N);
    // The server gets the inner packet as the client built it (hop limit aside).
    for (const p of r.sent) {
      const inner = p.subarray(p[0]! >> 4 === 6 ? 40 : 20);
      expect(r.got.server1.some((g) => sameApartFromHopLimit(inner, g))).toBe(true);
    }
  }, 60_000);

  it('tunnel packets from an allowed front whose inner destination is not a service: not_service (a tunnel nested toward the back itself: malformed, SPEC 5), nothing reaches the server', async () => {
    const port = 5002;
    const cases = [
      { src: S6, dst: B6, upper: inner6('2001:db8:5::81', port) },
      { src: S4, dst: B4, upper: inner4('192.0.2.81', port) },
      { src: S6, dst: B6, upper: inner4(B4, port) }, // the back's own address inside
      // A tunnel nested toward the back itself (last case): SPEC 5 calls it malformed.
      { src: S6, dst: B6, upper: `IPv6(src='${S6}', dst='${B6}', hlim=64)/${inner6(S6, port)}` },
    ];
    const r = await run(port, cases);
    expect(r.delta).toEqual({ back1: { not_service: (cases.length - 1) * N, malformed: N }, back2: {} });
    expect(r.got).toEqual({ server1: [], server2: [] });
  }, 60_000);

  it('packets routed into the back to addresses it does not own (translated or tunnelled): not_service, nothing reaches the server', async () => {
    const port = 5003;
    const udp = `UDP(sport=42000, dport=${port})/Raw(b'mslb-refusal-test')`;
    const cases = [
      { src: C6, dst: EXTRA6.addr, upper: udp },
      { src: C4, dst: EXTRA4.addr, upper: udp },
      { src: S6, dst: EXTRA6.addr, upper: inner6(S6, port) }, // from an allowed front, but not to B
      { src: S4, dst: EXTRA4.addr, upper: inner4(S4, port) },
    ];
    const r = await run(port, cases);
    expect(r.delta).toEqual({ back1: { not_service: cases.length * N }, back2: {} });
    expect(r.got).toEqual({ server1: [], server2: [] });
  }, 60_000);

  /** Tunnel packets to back1 from outer sources outside allowedFronts, marked by `port`. */
  const strangers = (port: number) => [
    { src: '2001:db8:5::81', dst: B6, upper: inner6(S6, port) }, // next to S, outside its /128
    { src: '192.0.2.81', dst: B4, upper: inner4(S4, port) },
    { src: LINKS.back1.v6[0], dst: B6, upper: inner4(S4, port) }, // the front host's own link address
    { src: LINKS.back1.v4[0], dst: B4, upper: inner6(S6, port) },
  ];

  it('mode auto (the default): tunnel packets from outer sources outside allowedFronts are translated like any packet (SPEC 6), never unwrapped', async () => {
    const port = 5001;
    const cases = strangers(port);
    const before = { back1: await drops(lab, 'back1'), back2: await drops(lab, 'back2') };
    const cap = await lab.capture('server1-link', { filter: 'ip6 proto 41 or ip6 proto 4 or ip proto 4 or ip proto 41' });
    const sent = await send(cases);
    const got = await cap.stopPackets();
    const after = { back1: await drops(lab, 'back1'), back2: await drops(lab, 'back2') };
    expect({ back1: dropDelta(before.back1, after.back1), back2: dropDelta(before.back2, after.back2) }).toEqual({ back1: {}, back2: {} });
    // Each arrives as sent, its outer destination B rewritten to S (hop limit / TTL and the IPv4
    // header checksum aside): the tunnel is the server's business, as it would be in translate mode.
    const asS = (p: Uint8Array): Uint8Array => {
      const q = Uint8Array.from(p);
      if (q[0]! >> 4 === 6) q.set(Buffer.from('20010db8000500000000000000000080', 'hex'), 24);
      else q.set([192, 0, 2, 80], 16);
      return q;
    };
    expect(S6).toBe('2001:db8:5::80');
    expect(S4).toBe('192.0.2.80');
    expect(got.length).toBe(cases.length * N);
    for (const p of sent) expect(got.filter((g) => sameApartFromHopLimit(asS(p), g)).length).toBe(N);
  }, 60_000);

  it('mode encap: the same packets are refused (unauthorized_source), nothing reaches the server', async () => {
    const port = 5009;
    const cfg = parseYaml(readFileSync(join(repoRoot(), BACK_CONFIGS.back1), 'utf8')) as { tun: { routes: string[] }; addresses: { mode?: string }[] };
    cfg.tun.routes = [...cfg.tun.routes, EXTRA6.prefix, EXTRA4.prefix];
    for (const a of cfg.addresses) a.mode = 'encap';
    const file = join(lab.workDir, 'back1-encap-only.yaml');
    writeFileSync(file, stringifyYaml(cfg));
    await lab.stopService('back1');
    await lab.startService('back1', file);
    await settledDrops(lab, ['back1', 'back2']);
    const cases = strangers(port);
    const r = await run(port, cases);
    expect(r.delta).toEqual({ back1: { unauthorized_source: cases.length * N }, back2: {} });
    expect(r.got).toEqual({ server1: [], server2: [] });
  }, 90_000);

});
