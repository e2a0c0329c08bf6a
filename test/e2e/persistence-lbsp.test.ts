// Session persistence with the LBSP Destination Option, end to end with real Linux TCP sockets
// (test/e2e/fixtures/persist-client.py: sticky IPV6_DSTOPTS to send the option, IPV6_RECVDSTOPTS +
// IPV6_2292PKTOPTIONS to read the one the back stamped on the reply):
//   - the deck's table "Session Persistence at a Load Balancer" (seeds/000), row by row;
//   - a Linux server accepts a packet carrying the option as type 0x1E and replies; as type 1 (the
//     deck's literal value, which is PadN) Linux drops it silently and counts Ip6InHdrErrors, and
//     the front refuses it before it crosses the fabric (docs/lbsp.md).
// Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/netns.js';
import { parseAddress } from '../../shared/table/addr.js';
import { CLIENTS, PORTS } from '../helpers/lab.js';
import type { ServiceName } from '../../lab/lab.js';
import {
  FTP_PORT, LINE_PORT, PBACKS, backFor, VIP1, VIP2, compileForPrediction, connect, predictWith, startPersistenceLab, tableBacks,
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
});
