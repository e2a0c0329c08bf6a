// The draft's other configurations on real kernel stacks, in the routed lab
// (lab/topology-variants.ts: client -- net, the front on one arm of net, front2 on another,
// net -- back1/back2 -- servers; configs in deploy/lab/draft/):
// - one arm (Figure 5), translate and encap: curl, HTTPS, TLS and fragmented UDP land on the right
//   server and the front's only link carries requests, never an answer (return traffic bypasses
//   the front);
// - a two-stage chain (Figure 4): front -> front2 -> back1, in translate (S rewritten to front2's
//   address, a service there) and in encap (wrapped to front2, unwrapped, balanced, re-wrapped;
//   each front one hop: a probe that runs out at front2 gets Time Exceeded from S);
// - return encapsulation (section 6, Figure 12) with ingress filtering on the router (nftables drops
//   src = S arriving from the backs): without it nothing works; with it the backs wrap the answers
//   toward the front's gateway address (outer source B) and curl, TLS and 2 MB downloads complete.
// Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/netns.js';
import { CLIENTS, CLIENT_NAMES, Lab, PORTS, S4, S6, hostPart, serviceFor, type CaptureSummary, type ClientName } from '../helpers/lab.js';
import { ROUTED } from '../../lab/topology-variants.js';
import { PYTHON } from '../../lab/paths.js';
import { sendScapy } from '../helpers/datapath.js';

const B1 = { v6: '2001:db8:b::1', v4: '198.51.100.1' };

/** Packets whose outer (or inner) header goes from S to a client: an answer. */
function answers(s: CaptureSummary): number {
  let n = 0;
  for (const c of CLIENT_NAMES) {
    const k = `${serviceFor(CLIENTS[c].family)} > ${CLIENTS[c].address}`;
    n += (s.pairs[k] ?? 0) + (s.innerPairs[k] ?? 0);
  }
  return n;
}

/**
 * A 3000-byte UDP datagram to S:7 with path MTU discovery off (IPv4: no DF; both: the kernel
 * fragments at the path MTU it knows and reports no ICMP error to the socket), retried 3 times.
 */
const BIG_UDP = `
import socket, sys
src, dst = sys.argv[1], sys.argv[2]
v6 = ':' in dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6: s.setsockopt(socket.IPPROTO_IPV6, 23, 0)  # IPV6_MTU_DISCOVER = IPV6_PMTUDISC_DONT
else: s.setsockopt(socket.IPPROTO_IP, 10, 0)     # IP_MTU_DISCOVER = IP_PMTUDISC_DONT
s.bind((src, 0))
s.settimeout(1.0)
for attempt in range(3):
    try:
        s.sendto(b'u' * 3000, (dst, 7))
        print(s.recv(65535).decode().split('\\n')[0])
        sys.exit(0)
    except OSError:
        pass
sys.exit(3)
`;

/** One UDP probe to S:33434 with the given hop limit. */
const HOP_PROBE = `
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, int(sys.argv[3]))
s.bind((sys.argv[1], 0))
s.sendto(b'probe', (sys.argv[2], 33434))
`;

describe.skipIf(!isRoot())('draft topologies: one arm, two stages, return encapsulation (routed lab)', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'translate', variant: 'routed', frontConfig: 'deploy/lab/draft/front-translate.yaml' });
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  async function bigUdp(c: ClientName): Promise<string> {
    const r = await lab.set.run(lab.ns.client, PYTHON, ['-c', BIG_UDP, CLIENTS[c].address, serviceFor(CLIENTS[c].family)], { timeoutMs: 8000 });
    return r.code === 0 ? r.stdout.trim() : `exit ${r.code}: ${r.stderr.trim().slice(-200)}`;
  }

  /** curl, HTTPS and openssl TLS from every client; each must reach `want(client)` with the client as source. */
  async function everyClient(want: (c: ClientName) => string, where: string): Promise<void> {
    for (const c of CLIENT_NAMES) {
      const http = await lab.curl(c);
      expect(http, `${where} ${c} http`).toMatchObject({ ok: true, server: want(c), sawSource: CLIENTS[c].address });
      const https = await lab.https(c);
      expect(https, `${where} ${c} https`).toMatchObject({ ok: true, server: want(c), sawSource: CLIENTS[c].address });
      const tls = await lab.tls(c);
      expect(tls, `${where} ${c} tls`).toMatchObject({ ok: true, server: want(c) });
    }
  }

  it('one arm (Figure 5), translate then encap: every client lands on its server; the front\'s link never carries an answer', async () => {
    for (const cfg of ['deploy/lab/draft/front-translate.yaml', 'deploy/lab/draft/front-encap.yaml']) {
      if (!cfg.endsWith('translate.yaml')) await lab.restartFront(cfg);
      const atFront = await lab.capture('front-link', { filter: 'tcp or ip proto 4 or ip6 proto 41 or ip proto 41 or ip6 proto 4' });
      const atClient = await lab.capture('client-link', { filter: 'tcp' });
      await everyClient((c) => lab.expectedServer(c), cfg);
      // 3000-byte UDP datagrams leave the client in fragments: all of them reach one back and the
      // server reassembles them (translate: only the first fragment's checksum is fixed up)
      for (const c of CLIENT_NAMES) expect(await bigUdp(c), `${cfg} ${c} udp 3000`).toBe(lab.expectedServer(c));
      const f = await atFront.stop();
      const cl = await atClient.stop();
      expect(f.count, cfg).toBeGreaterThan(0);
      expect(answers(f), `${cfg}: answers through the front`).toBe(0);
      expect(answers(cl), `${cfg}: answers reach the client`).toBeGreaterThan(0);
      expect(f.badChecksums, cfg).toEqual([]);
    }
  }, 120_000);

  it('two stages (Figure 4), translate: S -> front2\'s address (a service there) -> back1\'s B -> S at server1', async () => {
    await lab.startService('front2', 'deploy/lab/draft/front2.yaml');
    await lab.restartFront('deploy/lab/draft/front-stage1-translate.yaml');
    const cap = await lab.capture('front2-link', { filter: 'tcp' });
    await everyClient(() => 'server1', 'two-stage translate');
    const s = await cap.stop();
    for (const c of ['c1v6', 'c2v4'] as const) {
      const a = CLIENTS[c].address;
      const v = CLIENTS[c].family === 'ipv6' ? 'v6' : 'v4';
      expect(s.pairs[`${a} > ${ROUTED.front2[v]}`], `${c} -> front2`).toBeGreaterThan(0);
      expect(s.pairs[`${a} > ${B1[v]}`], `${c} -> back1 (from front2)`).toBeGreaterThan(0);
    }
    expect(s.badChecksums).toEqual([]);
  }, 120_000);

  it('two stages, encap: wrapped to front2, unwrapped there (outer source S accepted), balanced and re-wrapped toward back1', async () => {
    await lab.restartFront('deploy/lab/draft/front-stage1-encap.yaml');
    const unwrapped = await lab.metric('front2', 'mslb_tunnel_unwrapped_total');
    const cap = await lab.capture('front2-link', { filter: 'ip6 proto 41 or ip proto 4' });
    await everyClient(() => 'server1', 'two-stage encap');
    const s = await cap.stop();
    expect(s.pairs[`${S6} > ${ROUTED.front2.v6}`], '6in6 to front2').toBeGreaterThan(0);
    expect(s.pairs[`${S6} > ${B1.v6}`], '6in6 from front2 to back1').toBeGreaterThan(0);
    expect(s.pairs[`${S4} > ${ROUTED.front2.v4}`], '4in4 to front2').toBeGreaterThan(0);
    expect(s.pairs[`${S4} > ${B1.v4}`], '4in4 from front2 to back1').toBeGreaterThan(0);
    expect(s.badChecksums).toEqual([]);
    expect(await lab.metric('front2', 'mslb_tunnel_unwrapped_total')).toBeGreaterThan(unwrapped);
    expect(await lab.metric('front2', 'mslb_drops_total', { reason: 'unauthorized_source' })).toBe(0);
    // Hop limit: each front is one hop. A probe sent with hop limit 3 leaves net with 2, enters the
    // first front with 1 (the kernel's hop), is wrapped as it is; front2 unwraps it, takes its own
    // hop and would send it on with 0: Time Exceeded from S, quoting the probe, reaches the client.
    const te = await lab.capture('client-link', { filter: 'icmp6' });
    const r = await lab.set.run(lab.ns.client, PYTHON, ['-c', HOP_PROBE, CLIENTS.c1v6.address, S6, '3'], { timeoutMs: 5000 });
    await te.stop();
    expect(r.code, r.stderr).toBe(0);
    const rows = lab.set.exec(te.end.ns, 'tshark', ['-n', '-r', te.file, '-Y', 'icmpv6.type == 3', '-T', 'fields', '-E', 'occurrence=f', '-e', 'ipv6.src', '-e', 'ipv6.dst']).trim();
    expect(rows.split('\n')[0]).toBe(`${S6}\t${CLIENTS.c1v6.address}`);
    expect(await lab.metric('front2', 'mslb_drops_total', { reason: 'hop_limit' })).toBeGreaterThan(0);
    expect(await lab.metric('front2', 'mslb_icmp_sent_total', { type: 'time_exceeded' })).toBeGreaterThan(0);
    await lab.stopService('front2');
  }, 120_000);

  it('return encapsulation (section 6): with ingress filtering on the router, answers get through only when the backs wrap them', async () => {
    await lab.restartFront('deploy/lab/draft/front-encap.yaml');
    expect((await lab.curl('c1v6')).ok).toBe(true); // no filter yet
    lab.set.exec(lab.ns.net, 'nft', ['-f', '-'], {
      input: `table inet bcp38 {
  chain ingress_filter {
    type filter hook forward priority 0; policy accept;
    iifname { "eth-back1", "eth-back2" } ip saddr ${S4} counter drop
    iifname { "eth-back1", "eth-back2" } ip6 saddr ${S6} counter drop
  }
}
`,
    });
    // without return encapsulation the router drops every answer
    for (const c of ['c1v6', 'c2v4'] as const) expect((await lab.curl(c, { timeoutMs: 2000 })).ok, `${c} filtered`).toBe(false);
    expect(lab.set.exec(lab.ns.net, 'nft', ['list', 'ruleset'])).toMatch(/counter packets [1-9]/);
    await lab.stopService('back1');
    await lab.stopService('back2');
    await lab.startService('back1', 'deploy/lab/draft/back1-return-encap.yaml'); // gateway over IPv6
    await lab.startService('back2', 'deploy/lab/draft/back2-return-encap.yaml'); // gateway over IPv4
    const cap = await lab.capture('back1-link', { filter: 'ip6 proto 41 or ip6 proto 4' });
    await everyClient((c) => lab.expectedServer(c), 'return encap');
    // 2 MB downloads: full-size answers do not fit the return tunnel; the backs' PTB / Frag Needed
    // make the servers send smaller ones (the client forgets the path MTUs it learned earlier, so
    // its SYNs announce the full MSS again)
    for (const f of ['-4', '-6']) lab.set.exec(lab.ns.client, 'ip', [f, 'route', 'flush', 'cache']);
    for (const c of ['c1v6', 'c2v6', 'c1v4', 'c2v4'] as const) {
      const url = `http://${hostPart(serviceFor(CLIENTS[c].family))}:${PORTS.http}/big?bytes=2000000`;
      const r = await lab.set.run(lab.ns.client, 'curl', ['-sS', '--max-time', '20', '--interface', CLIENTS[c].address, '-o', '/dev/null', '-w', '%{size_download}', url], { timeoutMs: 25_000 });
      expect(r.stdout, `${c} download: ${r.stderr}`).toBe('2000000');
    }
    const s = await cap.stop();
    expect(s.pairs[`${B1.v6} > ${ROUTED.gateway.v6}`], 'back1 wraps toward the gateway, outer source B').toBeGreaterThan(0);
    expect(s.innerPairs[`${S6} > ${CLIENTS.c1v6.address}`]).toBeGreaterThan(0);
    expect(s.innerPairs[`${S4} > ${CLIENTS.c1v4.address}`]).toBeGreaterThan(0); // 4in6
    expect(s.badChecksums).toEqual([]);
    expect(await lab.metric('back1', 'mslb_return_encapsulated_total')).toBeGreaterThan(0);
    expect(await lab.metric('back2', 'mslb_return_encapsulated_total')).toBeGreaterThan(0);
    let tooBig = 0;
    for (const b of ['back1', 'back2'] as const) tooBig += await lab.metric(b, 'mslb_icmp_sent_total', { type: 'packet_too_big' }) + await lab.metric(b, 'mslb_icmp_sent_total', { type: 'frag_needed' });
    expect(tooBig, 'PTB / Frag Needed from the backs to the servers').toBeGreaterThan(0);
    expect(await lab.metric('front', 'mslb_tunnel_unwrapped_total')).toBeGreaterThan(0);
    expect(await lab.metric('front', 'mslb_drops_total', { reason: 'unauthorized_source' })).toBe(0);

    // SPEC 3: return traffic only from a back's own address. A sender inside acceptTunnelFrom
    // (2001:db8:b::/64, 198.51.100.0/24) spoofing another address there cannot have the front
    // deliver "answers from S" to a victim; from back1's own address the same packet goes through.
    const victim = { v6: CLIENTS.c1v6.address, v4: CLIENTS.c1v4.address };
    const ret = (outer6: string, outer4: string) => [
      `IPv6(src='${outer6}', dst='${ROUTED.gateway.v6}', nh=41)/IPv6(src='${S6}', dst='${victim.v6}', hlim=60)/UDP(sport=80, dport=9)/Raw(b'spoofed-return')`,
      `IP(src='${outer4}', dst='${ROUTED.gateway.v4}', proto=4)/IP(src='${S4}', dst='${victim.v4}', ttl=60)/UDP(sport=80, dport=9)/Raw(b'spoofed-return')`,
    ];
    const cap2 = await lab.capture('client-link', { filter: 'udp and port 9' });
    const unauthBefore = await lab.metric('front', 'mslb_drops_total', { reason: 'unauthorized_source' });
    await sendScapy(lab, lab.ns.back1, ret('2001:db8:b::99', '198.51.100.99'), 5);
    await new Promise((r) => setTimeout(r, 500));
    const spoofed = await cap2.stop();
    expect(spoofed.pairs[`${S6} > ${victim.v6}`] ?? 0, 'spoofed outer source: nothing reaches the victim').toBe(0);
    expect(spoofed.pairs[`${S4} > ${victim.v4}`] ?? 0).toBe(0);
    expect(await lab.metric('front', 'mslb_drops_total', { reason: 'unauthorized_source' })).toBe(unauthBefore + 10);
    const cap3 = await lab.capture('client-link', { filter: 'udp and port 9' });
    await sendScapy(lab, lab.ns.back1, ret(B1.v6, B1.v4), 5);
    await new Promise((r) => setTimeout(r, 500));
    const real = await cap3.stop();
    expect(real.pairs[`${S6} > ${victim.v6}`], 'from back1\'s address: forwarded').toBe(5);
    expect(real.pairs[`${S4} > ${victim.v4}`]).toBe(5);
  }, 180_000);
});
