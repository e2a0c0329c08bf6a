// Session persistence with the LBSP Destination Option, end to end with real Linux TCP sockets
// (test/e2e/fixtures/persist-client.py: sticky IPV6_DSTOPTS to send the option, IPV6_RECVDSTOPTS +
// IPV6_2292PKTOPTIONS to read the one the back stamped on the reply):
//   - the deck's table "Session Persistence at a Load Balancer" (seeds/000), row by row;
//   - a Linux server accepts a packet carrying the option as type 0x1E and replies; as type 1 (the
//     deck's literal value, which is PadN) Linux drops it silently and counts Ip6InHdrErrors, and
//     the front refuses it before it crosses the fabric (docs/lbsp.md);
//   - a server that sets its own Destination Options header (IPV6_DSTOPTS, name-server.py /HEX):
//     the back merges the option into it; checked on the client link by tshark (checksums) and
//     scapy (the options), and the client's echo of it returns to the same back.
// Needs root and `npm run build`.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/netns.js';
import { waitForOutput } from '../../lab/netns.js';
import { PYTHON, repoRoot } from '../../lab/paths.js';
import { parseAddress } from '../../shared/table/addr.js';
import { CLIENTS, PORTS } from '../helpers/lab.js';
import type { ServiceName } from '../../lab/lab.js';
import {
  BACK_IDS, FTP_PORT, LINE_PORT, PBACKS, backFor, VIP1, VIP2, compileForPrediction, connect, predictWith, startPersistenceLab, tableBacks,
  type BackId, type ConnSpec, type PersistenceLab,
} from '../helpers/persistence-lab.js';

const TABLE = {
  backs: tableBacks(),
  pools: {
    vip1: { members: ['b1', 'b2'], key: 'source+label' },
    vip2: { members: ['b1', 'b2', 'b3'], key: 'source+label' },
  },
  routes: [
    { source: '::/0', to: 'vip1', service: VIP1 },
    { source: '::/0', to: 'vip2', service: VIP2 },
  ],
};

// The deck's names: C1/C2 the application clients (carried in the LBSP client segment), Proxy1/2 the
// proxies whose addresses the front sees as source, SERV1..3 the real servers behind b1..b3.
const C1 = '2001:db8:100::c1';
const C2 = '2001:db8:100::c2';
const PROXY1 = CLIENTS.c1v6.address;
const PROXY2 = CLIENTS.c2v6.address;
const SERV: Record<string, BackId> = { SERV1: 'b1', SERV2: 'b2', SERV3: 'b3' };

/** The server's own final Destination Options header: unknown options 07 (4 octets) and 3E (2), PadN(2). */
const OWN_OPTS = [[0x07, 'aabbccdd'], [0x3e, '0102']] as const;
const OWN_DSTOPTS = '0001' + OWN_OPTS.map(([t, d]) => t.toString(16).padStart(2, '0') + (d.length / 2).toString(16).padStart(2, '0') + d).join('') + '01020000';
const OWN_PORT = 7001;

// scapy reads the capture: for every TCP packet from the service, the options of its final
// Destination Options header and whether its TCP checksum is the one scapy computes.
const DISSECT = `
import json, sys
from scapy.all import rdpcap, IPv6, TCP, IPv6ExtHdrDestOpt, Pad1, PadN
for p in rdpcap(sys.argv[1]):
    if IPv6 not in p or TCP not in p or p[IPv6].src != sys.argv[2]:
        continue
    d = None
    q = p[IPv6].payload
    while not isinstance(q, TCP):
        d = q if isinstance(q, IPv6ExtHdrDestOpt) else None
        q = q.payload
    opts = [] if d is None else [[o.otype, bytes(o)[2:].hex()] for o in d.options if not isinstance(o, (Pad1, PadN))]
    t = p[TCP]
    got = t.chksum
    t.chksum = None
    ok = IPv6(bytes(p[IPv6]))[TCP].chksum == got
    print(json.dumps({'sport': t.sport, 'flags': str(t.flags), 'opts': opts, 'hdrLen': -1 if d is None else (d.len + 1) * 8, 'checksumOk': ok}))
`;

function snmp6(lab: PersistenceLab['lab'], ns: string, name: string): number {
  const text = lab.set.exec(ns, 'cat', ['/proc/net/snmp6']);
  const m = new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(text);
  if (!m) throw new Error(`${name} not in /proc/net/snmp6`);
  return Number(m[1]);
}

describe.skipIf(!isRoot())('session persistence: LBSP option', () => {
  let pl: PersistenceLab;

  beforeAll(async () => {
    pl = await startPersistenceLab(TABLE);
  }, 120_000);
  afterAll(async () => {
    await pl?.stop();
  }, 30_000);

  it('the deck\'s persistence table: every row lands on the server the table says', async () => {
    const lab = pl.lab;
    const t = compileForPrediction(TABLE);
    // "Server Selection Based on LB": the front's own choice for a new session. With `source+label`
    // pools the client key (the LBSP client segment, not the proxy's address) and the session's
    // flow label pick the server; pick session labels whose choice is the one the deck shows.
    const labelFor = (client: string, service: string, want: BackId | { not: BackId }): number => {
      for (let l = 1; l < 100_000; l++) {
        const b = predictWith(t, { src: PROXY1, service, label: l, lbspClient: client, lbspServer: '::' });
        if (typeof want === 'string' ? b === want : b !== want.not) return l;
      }
      throw new Error('no label');
    };
    const L1 = labelFor(C1, VIP1, SERV.SERV1!); // HTTP session of C1
    const L3 = labelFor(C1, VIP1, SERV.SERV2!); // C1's FTP session; by itself it would go to SERV2
    const L5 = labelFor(C2, VIP2, SERV.SERV3!);
    const L6 = labelFor(C2, VIP2, { not: SERV.SERV3! }); // a label that alone would not pick SERV3
    const rows: (ConnSpec & { row: string; by: 'LB' | 'LBSPOD-2'; expect: string })[] = [
      // row, Source, Dest, Port, LBSPOD-1, LBSPOD-2 ("@k": learned from result k's stamped reply)
      { row: '1', src: PROXY1, dst: VIP1, port: PORTS.http, mode: 'http', label: L1, lbsp: { client: C1, server: '::' }, by: 'LB', expect: 'SERV1' },
      { row: '2', src: PROXY1, dst: VIP1, port: PORTS.http, mode: 'http', label: L3, lbsp: { client: C1, server: '@0' }, by: 'LBSPOD-2', expect: 'SERV1' },
      { row: '3', src: PROXY1, dst: VIP1, port: FTP_PORT, mode: 'line', label: L3, lbsp: { client: C1, server: '::' }, by: 'LB', expect: 'SERV2' },
      { row: '4', src: PROXY2, dst: VIP1, port: PORTS.https, mode: 'https', label: L3, lbsp: { client: C1, server: '@0' }, by: 'LBSPOD-2', expect: 'SERV1' },
      { row: "4'", src: PROXY2, dst: VIP1, port: PORTS.https, mode: 'https', label: L3, lbsp: { client: C1, server: '@0' }, by: 'LBSPOD-2', expect: 'SERV1' },
      { row: '5', src: PROXY1, dst: VIP2, port: 80, mode: 'line', label: L5, lbsp: { client: C2, server: '::' }, by: 'LB', expect: 'SERV3' },
      { row: '6', src: PROXY1, dst: VIP2, port: 80, mode: 'line', label: L6, lbsp: { client: C2, server: '@5' }, by: 'LBSPOD-2', expect: 'SERV3' },
    ];
    const dec = async (reason: string) => lab.metric('front', 'mslb_decisions_total', { reason });
    const before = { lbsp: await dec('lbsp_server'), label: await dec('flow_label') };
    const stampedBefore = await Promise.all((['back1', 'back2'] as const).map((b) => lab.metric(b, 'mslb_lbsp_stamped_total')));

    const res = await connect(lab, rows);
    const table = rows.map((r, i) => `row ${r.row.padEnd(2)} ${r.src === PROXY1 ? 'Proxy1' : 'Proxy2'} ${r.dst === VIP1 ? 'VIP1' : 'VIP2'} ${String(r.port).padEnd(3)} ` +
      `${r.lbsp!.client === C1 ? 'C1' : 'C2'} ${res[i]!.sentServer === '::' ? '0' : res[i]!.sentServer} by ${r.by} -> ${res[i]!.server ?? res[i]!.error} ` +
      `(stamped back: ${JSON.stringify(res[i]!.lbspBack)})`);
    console.log(`deck persistence table, labels L1=${L1} L3=${L3} L5=${L5} L6=${L6}\n${table.join('\n')}`);
    rows.forEach((r, i) => {
      const got = res[i]!;
      const back = SERV[r.expect]!;
      expect(got, `row ${r.row}`).toMatchObject({ ok: true, server: PBACKS[back].server });
      // The reply carried the option: the answering back's serverId, and the client segment as sent.
      expect(got.lbspBack, `row ${r.row} reply option`).toEqual({ type: 0x1e, client: r.lbsp!.client, server: PBACKS[back].vip1 });
      // Later rows really sent the server segment learned from the stamped reply.
      if (r.lbsp!.server.startsWith('@')) expect(got.sentServer, `row ${r.row}`).toBe(PBACKS[back].vip1);
    });
    // A server behind the back accepted the option type 0x1E and handed it up: the line server echoes
    // the Destination Options header of the last segment it received (canonical layout, type 0x1E).
    const hexOf = (a: string) => Array.from(parseAddress(a)!.words, (w) => w.toString(16).padStart(8, '0')).join('');
    expect(res[2]!.line).toBe(`server2 ${VIP1} 0604010200001e20${hexOf(C1)}${'0'.repeat(32)}`);
    // Decision reasons: the rows selected by the server segment are lbsp_server, the others flow_label.
    expect((await dec('lbsp_server')) - before.lbsp).toBe(rows.filter((r) => r.by === 'LBSPOD-2').length);
    expect((await dec('flow_label')) - before.label).toBe(rows.filter((r) => r.by === 'LB').length);
    const stampedAfter = await Promise.all((['back1', 'back2'] as const).map((b) => lab.metric(b, 'mslb_lbsp_stamped_total')));
    expect(stampedAfter[0]! - stampedBefore[0]!).toBeGreaterThan(0);
    expect(stampedAfter[1]! - stampedBefore[1]!).toBeGreaterThan(0);
    expect(await lab.metric('back1', 'mslb_mss_clamped_total')).toBeGreaterThan(0);
  }, 90_000);

  it('a bulk transfer back to the client is stamped segment by segment: the MSS clamp leaves room for the option (none skipped)', async () => {
    const lab = pl.lab;
    const backs = ['back1', 'back2', 'back3'] as ServiceName[];
    const sum = async (m: string) => (await Promise.all(backs.map((b) => lab.metric(b, m)))).reduce((a, b) => a + b, 0);
    const [st0, sk0, cl0] = [await sum('mslb_lbsp_stamped_total'), await sum('mslb_lbsp_stamp_skipped_total'), await sum('mslb_mss_clamped_total')];
    const BYTES = 4_000_000;
    const [r] = await connect(lab, [{ src: PROXY1, dst: VIP1, port: LINE_PORT, mode: 'bulk', bytes: BYTES, lbsp: { client: C1, server: '::' }, timeout: 20 }]);
    expect(r).toMatchObject({ ok: true, bytes: BYTES });
    const back = backFor(r!.server)!;
    expect(r!.lbspBack).toEqual({ type: 0x1e, client: C1, server: PBACKS[back].vip1 });
    const stamped = (await sum('mslb_lbsp_stamped_total')) - st0;
    const skipped = (await sum('mslb_lbsp_stamp_skipped_total')) - sk0;
    console.log(`bulk ${BYTES} bytes from ${back}: ${stamped} return packets stamped (GSO super-packets count once), ${skipped} skipped, SYN MSS clamped ${(await sum('mslb_mss_clamped_total')) - cl0}x`);
    expect(skipped).toBe(0);
    expect(stamped).toBeGreaterThan(0);
    expect((await sum('mslb_mss_clamped_total')) - cl0).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('option type 0x1E reaches a Linux server and is answered; type 1 (PadN, the deck\'s value) is dropped by Linux (Ip6InHdrErrors) and by the front (malformed)', async () => {
    const lab = pl.lab;
    const srv = lab.ns.server1;
    const back1 = lab.ns.back1;
    const fromBack = (type: number): ConnSpec => ({
      src: '2001:db8:e3::1', dst: VIP1, port: FTP_PORT, mode: 'line', lbsp: { type, client: C1, server: '::' }, timeout: 2,
    });
    // Straight onto server1's link from back1's namespace (no mslb in the way): the server's stack decides.
    const hdrErr0 = snmp6(lab, srv, 'Ip6InHdrErrors');
    const [ok1e] = await connect(lab, [fromBack(0x1e)], back1);
    expect(ok1e).toMatchObject({ ok: true, server: 'server1' });
    expect(ok1e!.line).toContain('1e20');
    expect(snmp6(lab, srv, 'Ip6InHdrErrors')).toBe(hdrErr0);
    const paramProb0 = snmp6(lab, srv, 'Icmp6OutParmProblems');
    const [pad] = await connect(lab, [fromBack(1)], back1);
    expect(pad!.ok).toBe(false);
    expect(pad!.error).toMatch(/timed out/);
    const hdrErrDelta = snmp6(lab, srv, 'Ip6InHdrErrors') - hdrErr0;
    expect(hdrErrDelta).toBeGreaterThanOrEqual(2); // the SYN and its retransmission, each dropped
    expect(snmp6(lab, srv, 'Icmp6OutParmProblems')).toBe(paramProb0); // silently: no Parameter Problem
    // Through the front: it refuses what the server's stack would refuse, counted as malformed.
    const mal0 = await lab.metric('front', 'mslb_drops_total', { reason: 'malformed' });
    const [viaFront] = await connect(lab, [{ src: PROXY1, dst: VIP1, port: FTP_PORT, mode: 'line', lbsp: { type: 1, client: C1, server: '::' }, timeout: 2 }]);
    expect(viaFront!.ok).toBe(false);
    expect((await lab.metric('front', 'mslb_drops_total', { reason: 'malformed' })) - mal0).toBeGreaterThanOrEqual(2);
    console.log(`type 0x1E: answered by server1; type 1: ${pad!.error}, server1 Ip6InHdrErrors +${hdrErrDelta}, no ICMPv6 sent; via the front: dropped as malformed`);
  }, 60_000);
  it('a server that sets its own Destination Options header: its replies arrive stamped (option merged, its options kept, checksums valid on the client link), the client\'s echo returns to the same back, a bulk transfer is stamped whole', async () => {
    const lab = pl.lab;
    const script = join(repoRoot(), 'test/e2e/fixtures/name-server.py');
    await Promise.all(BACK_IDS.map((b) => {
      const srv = PBACKS[b].server;
      const p = lab.set.spawn((lab.ns as unknown as Record<string, string>)[srv]!, PYTHON, [script, srv, `[${VIP1}]:${OWN_PORT}/${OWN_DSTOPTS}`]);
      return waitForOutput(p, /^ready$/m, 10_000, `${srv} own-options server`);
    }));
    const backs = BACK_IDS.map((b) => PBACKS[b].ns) as ServiceName[];
    const each = async (m: string) => Promise.all(backs.map((b) => lab.metric(b, m)));
    const [st0, sk0] = [await each('mslb_lbsp_stamped_total'), await each('mslb_lbsp_stamp_skipped_total')];

    const cap = await lab.capture('client-link', { filter: `ip6 host ${VIP1}` });
    const [first] = await connect(lab, [{ src: PROXY1, dst: VIP1, port: OWN_PORT, mode: 'line', lbsp: { client: C1, server: '::' } }]);
    const summary = await cap.stop();
    expect(first).toMatchObject({ ok: true });
    const back = backFor(first!.server)!;
    expect(back).toBeDefined();
    // the client's kernel handed up one header holding the server's options and ours
    expect(first!.lbspBack).toEqual({ type: 0x1e, client: C1, server: PBACKS[back].vip1 });

    // On the wire, toward the client: every reply carries the merged header (the handshake too).
    const lines = lab.set.exec(cap.end.ns, PYTHON, ['-c', DISSECT, cap.file, VIP1], { timeoutMs: 60_000 }).split('\n').filter(Boolean);
    const replies = lines.map((l) => JSON.parse(l) as { sport: number; flags: string; opts: [number, string][]; hdrLen: number; checksumOk: boolean })
      .filter((r) => r.sport === OWN_PORT);
    const hexOf = (a: string) => Array.from(parseAddress(a)!.words, (w) => w.toString(16).padStart(8, '0')).join('');
    const want: [number, string][] = [...OWN_OPTS.map(([t, d]) => [t, d] as [number, string]), [0x1e, hexOf(C1) + hexOf(PBACKS[back].vip1)]];
    console.log(`own-options server ${back}: ${replies.length} replies on the client link, header ${replies[0]?.hdrLen} octets, ` +
      `options ${JSON.stringify(replies[0]?.opts)}; tshark checksums good ${summary.goodChecksums}, bad ${summary.badChecksums.length}`);
    expect(replies.length).toBeGreaterThanOrEqual(3); // SYN-ACK, the line, FIN
    expect(replies.some((r) => r.flags.includes('S'))).toBe(true);
    for (const r of replies) {
      expect(r.checksumOk, `reply ${r.flags}`).toBe(true);
      if (r.flags.includes('R')) continue; // a reset leaves without the socket's options (then inserted)
      expect(r.opts, `reply ${r.flags}`).toEqual(want);
      expect(r.hdrLen).toBe(48); // the server's 16 octets, options ending at 12: + PadN(0) + 34
    }
    expect(summary.badChecksums).toEqual([]);
    expect(summary.goodChecksums).toBeGreaterThanOrEqual(replies.length);

    // The echo: from the other proxy, with a flow label that alone would pick another back, the
    // server segment learned from the stamped reply sends the connection to the same back.
    const t = compileForPrediction(TABLE);
    let label = 0;
    for (let l = 1; l < 100_000 && label === 0; l++) {
      if (predictWith(t, { src: PROXY2, service: VIP1, label: l, lbspClient: C1, lbspServer: '::' }) !== back) label = l;
    }
    expect(label).toBeGreaterThan(0);
    const lbspDec0 = await lab.metric('front', 'mslb_decisions_total', { reason: 'lbsp_server' });
    const echoed = (first!.lbspBack as { server: string }).server; // what the client received
    const [echo] = await connect(lab, [{ src: PROXY2, dst: VIP1, port: OWN_PORT, mode: 'line', label, lbsp: { client: C1, server: echoed } }]);
    expect(echo).toMatchObject({ ok: true, server: PBACKS[back].server, sentServer: PBACKS[back].vip1 });
    expect(echo!.lbspBack).toEqual({ type: 0x1e, client: C1, server: PBACKS[back].vip1 });
    expect((await lab.metric('front', 'mslb_decisions_total', { reason: 'lbsp_server' })) - lbspDec0).toBe(1);

    // Full-size segments from such a server still fit once merged (docs/lbsp.md, MSS): none skipped.
    const BYTES = 2_000_000;
    const [bulk] = await connect(lab, [{ src: PROXY2, dst: VIP1, port: OWN_PORT, mode: 'bulk', bytes: BYTES, lbsp: { client: C1, server: PBACKS[back].vip1 }, timeout: 20 }]);
    expect(bulk, JSON.stringify(bulk)).toMatchObject({ ok: true, bytes: BYTES, server: PBACKS[back].server });
    const [st1, sk1] = [await each('mslb_lbsp_stamped_total'), await each('mslb_lbsp_stamp_skipped_total')];
    const i = BACK_IDS.indexOf(back);
    console.log(`own-options server: ${back} stamped ${st1[i]! - st0[i]!} return packets (merged), skipped ${sk1.map((x, j) => x - sk0[j]!).join('/')}`);
    expect(st1[i]! - st0[i]!).toBeGreaterThan(replies.length);
    expect(sk1).toEqual(sk0);
  }, 90_000);
});
