// IP-in-UDP tunnels through the processors (no TUN): a front with encap.udpPort wraps toward its
// encap backs (all four family pairs, tunnel MTU 8 bytes smaller, fragments, fabric Packet Too Big
// learned from a quoted UDP tunnel packet); a back with udpPort unwraps what the front wrote and
// refuses the hostile variants (bad checksum, bad length, wrong port, outside allowedFronts, nested).
// scapy builds the input and judges the output (outer UDP checksum recomputed from scratch).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ScapyWorker } from '../helpers/scapy-worker.js';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { dropIndex, eventIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue, split } from '../helpers/tx-queue.js';
import { VERDICT_CONSUMED, dropVerdict } from '../../shared/engine/packet-processor.js';
import { FrontProcessor } from '../../front/front-processor.js';
import type { FrontRole } from '../../front/front-role.js';
import { BackProcessor } from '../../back/back-processor.js';
import type { BackRole } from '../../back/back-role.js';
import { PmtuCache } from '../../shared/tunnel/path-mtu-cache.js';
import { frontConfigFromValue } from '../../front/front-config.js';
import { backConfigFromValue } from '../../back/back-config.js';
import { words } from '../vectors/load.js';

const PORT = 6080;
const S6 = '2001:db8:5::80', S4 = '192.0.2.80', B6 = '2001:db8:b::1', B4 = '198.51.100.1';
const SRC6 = '2001:db8:f::1', SRC4 = '192.0.2.1';
const ctx: TableContext = { services: [S6, S4], mode: 'encap', encap: { source: SRC6, source4: SRC4, source6: SRC6 } };
// b6 carries both services over IPv6 (6in6, 4in6), b4 over IPv4 (4in4, 6in4)
const TABLE = {
  backs: {
    b6: { addresses: { [S6]: B6, [S4]: B6 }, mode: 'encap' },
    b4: { addresses: { [S6]: B4, [S4]: B4 }, mode: 'encap' },
  },
  routes: [
    { source: '2001:db8:c1::/48', to: 'b6' },
    { source: '203.0.113.0/26', to: 'b6' },
    { source: '2001:db8:c2::/48', to: 'b4' },
    { source: '203.0.113.64/26', to: 'b4' },
  ],
};

const BUILD = `
def run(_):
    S6, S4, B6, B4, F6, F4 = '2001:db8:5::80', '192.0.2.80', '2001:db8:b::1', '198.51.100.1', '2001:db8:f::1', '192.0.2.1'
    pay = lambda n: Raw(bytes((i * 7) & 255 for i in range(n)))
    p = {}
    # family pairs: inner from c1 -> b6 (outer IPv6), from c2 -> b4 (outer IPv4)
    p['6in6'] = IPv6(src='2001:db8:c1::10', dst=S6, hlim=64, tc=0x2a, fl=0x12345)/TCP(sport=40000, dport=443, flags='PA', seq=7)/pay(700)
    p['4in6'] = IP(src='203.0.113.10', dst=S4, ttl=64, flags='DF', tos=0x2a)/UDP(sport=40001, dport=53)/pay(300)
    p['4in4'] = IP(src='203.0.113.74', dst=S4, ttl=64, flags='DF')/TCP(sport=40002, dport=443, flags='S')
    p['6in4'] = IPv6(src='2001:db8:c2::10', dst=S6, hlim=64)/UDP(sport=40003, dport=53)/pay(1000)
    p['6in6_1452'] = IPv6(src='2001:db8:c1::10', dst=S6)/TCP(sport=40004, dport=443, flags='A')/pay(1452 - 60)
    p['6in6_1453'] = IPv6(src='2001:db8:c1::10', dst=S6)/TCP(sport=40004, dport=443, flags='A')/pay(1453 - 60)
    p['4in4_nodf_1500'] = IP(src='203.0.113.74', dst=S4, ttl=64, id=99)/UDP(sport=40005, dport=7)/pay(1472)
    p['4in4_df_1473'] = IP(src='203.0.113.74', dst=S4, ttl=64, flags='DF')/UDP(sport=40005, dport=7)/pay(1445)
    # a fabric router's Packet Too Big about one of our UDP tunnel packets (outer F6 -> B6)
    tun = IPv6(src=F6, dst=B6, hlim=63)/UDP(sport=50000, dport=${PORT})/p['6in6_1452']
    p['ptb_udp'] = IPv6(src='2001:db8:e1::2', dst=F6)/ICMPv6PacketTooBig(mtu=1400)/Raw(bytes(tun)[:1232])
    tun_other = IPv6(src=F6, dst=B6, hlim=63)/UDP(sport=50000, dport=${PORT + 1})/p['6in6_1452']
    p['ptb_udp_other_port'] = IPv6(src='2001:db8:e1::2', dst=F6)/ICMPv6PacketTooBig(mtu=1400)/Raw(bytes(tun_other)[:1232])
    # back: hostile UDP tunnels to B (allowedFronts F6/128, F4/32)
    inner6 = IPv6(src='2001:db8:c1::10', dst=S6, hlim=63)/UDP(sport=1, dport=2)/pay(20)
    inner4 = IP(src='203.0.113.10', dst=S4, ttl=63)/UDP(sport=1, dport=2)/pay(20)
    good = IPv6(src=F6, dst=B6)/UDP(sport=50001, dport=${PORT})/inner6
    p['inner6'] = inner6
    p['good6'] = good
    p['good4'] = IP(src=F4, dst=B4)/UDP(sport=50001, dport=${PORT})/inner4
    p['inner4'] = inner4
    b = bytearray(bytes(good)); b[46] ^= 0x40
    p['bad_csum'] = Raw(bytes(b))
    p['bad_len'] = IPv6(src=F6, dst=B6)/UDP(sport=50001, dport=${PORT}, len=8 + len(inner6) + 8)/inner6
    p['wrong_port'] = IPv6(src=F6, dst=B6)/UDP(sport=50001, dport=${PORT + 1})/inner6
    p['stranger'] = IPv6(src='2001:db8:66::1', dst=B6)/UDP(sport=50001, dport=${PORT})/inner6
    p['not_service'] = IPv6(src=F6, dst=B6)/UDP(sport=50001, dport=${PORT})/IPv6(src='2001:db8:c1::10', dst='2001:db8:77::1')/UDP()
    p['nested'] = IPv6(src=F6, dst=B6)/UDP(sport=50001, dport=${PORT})/IPv6(src=F6, dst=B6)/UDP(sport=50001, dport=${PORT})/inner6
    p['gue0'] = IPv6(src=F6, dst=B6)/UDP(sport=50001, dport=${PORT})/Raw(b'\\x00\\x00\\x00\\x00' + bytes(inner6))
    frag_src = IPv6(src=F6, dst=B6)/IPv6ExtHdrFragment(id=0x99)/UDP(sport=50001, dport=${PORT})/IPv6(src='2001:db8:c1::10', dst=S6, hlim=63)/UDP(sport=1, dport=2)/pay(1200)
    p['frag_inner'] = IPv6(src='2001:db8:c1::10', dst=S6, hlim=63)/UDP(sport=1, dport=2)/pay(1200)
    p['frags'] = fragment6(frag_src, 800)
    out = {}
    for k, v in p.items():
        out[k] = [bytes(x).hex() for x in v] if isinstance(v, list) else bytes(v).hex()
    return out
`;

/** scapy's view of a UDP tunnel packet: outer fields, checksums recomputed from scratch, the inner bytes. */
const JUDGE = `
def run(inp):
    out = []
    for h in inp:
        b = bytes.fromhex(h)
        pkt = IPv6(b) if b[0] >> 4 == 6 else IP(b)
        d = {'src': pkt.src, 'dst': pkt.dst, 'len': len(b)}
        if UDP in pkt:
            u = pkt[UDP]
            d['sport'], d['dport'], d['ulen'], d['csum'] = u.sport, u.dport, u.len, u.chksum
            q = pkt.copy(); q[UDP].chksum = None
            d['csum_right'] = (IPv6 if b[0] >> 4 == 6 else IP)(bytes(q))[UDP].chksum
            d['inner'] = bytes(u.payload).hex()
        if b[0] >> 4 == 6:
            d['tc'], d['fl'], d['hlim'] = pkt.tc, pkt.fl, pkt.hlim
        else:
            d['tos'], d['ttl'], d['df'], d['frag'] = pkt.tos, pkt.ttl, bool(pkt.flags.DF), pkt.frag
            q = pkt.copy(); q.chksum = None
            d['ip_csum_ok'] = IP(bytes(q)).chksum == pkt.chksum
        d['csum_ok'] = csum_ok(b)
        out.append(d)
    return out
`;

interface Judged { src: string; dst: string; len: number; sport: number; dport: number; ulen: number; csum: number; csum_right: number; inner: string; tc?: number; fl?: number; hlim?: number; tos?: number; ttl?: number; df?: boolean; frag?: number; ip_csum_ok?: boolean; csum_ok: boolean }

const w = (a: string) => Array.from(words(a));

describe('IP-in-UDP tunnels: front wraps, back unwraps', () => {
  const sc = new ScapyWorker();
  afterAll(() => sc.close());
  let P: Record<string, string | string[]>;
  let table: CompiledTable;
  const slots = new Map<string, number>();
  let counters: Float64Array;
  let bcounters: Float64Array;
  let fp: FrontProcessor;
  let bp: BackProcessor;
  let cache: PmtuCache;
  const tx = newTxQueue(64);

  const frontRole = (): FrontRole => ({
    lbspType: 0x1e, encapSource4: w(SRC4), encapSource6: w(SRC6), hopLimit: 64, udpPort: PORT,
    flowTable: { size: 4096, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 },
    icmp: { ratePerSecond: 10, burst: 50 }, tunMtu: 1500, pmtu: cache.toShared(),
  });
  const backRole = (mode = 1): BackRole => ({
    lbspType: 0x1e,
    own: [{ family: 6, b: w(B6), s: w(S6), mode }, { family: 4, b: w(B4), s: w(S4), mode }],
    services: [{ family: 6, words: w(S6) }, { family: 4, words: w(S4) }],
    allowedFronts: [{ family: 6, words: w(SRC6), len: 128 }, { family: 4, words: w(SRC4), len: 32 }],
    udpPort: PORT,
  });

  beforeAll(async () => {
    P = await sc.run<Record<string, string | string[]>>(BUILD);
    const v = validateTable(TABLE, 'fixture.yaml', ctx);
    expect(v.errors).toEqual([]);
    table = CompiledTable.compile(v.table!, {
      services: ctx.services, flowLabelEnabled: true, lbspEnabled: true, maglevSize: 251,
      slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
    });
  }, 60_000);
  beforeEach(() => {
    counters = newCounterBlock();
    bcounters = newCounterBlock();
    cache = PmtuCache.create(1500);
    fp = new FrontProcessor(frontRole(), counters, () => 1_000_000);
    fp.setTable(table);
    bp = new BackProcessor(backRole(), bcounters);
  });

  function run(p: FrontProcessor | BackProcessor, h: string): { verdict: number; out: string[] } {
    const b = Buffer.from(h, 'hex');
    const buf = new Uint8Array(128 + b.length + 64).fill(0xa5);
    buf.set(b, 128);
    tx.reset();
    const verdict = p.process(buf, 128, b.length, new Uint8Array(0), 0, tx);
    const q = split(tx, buf);
    return { verdict, out: q.fwd !== undefined ? [q.fwd, ...q.aux] : q.aux };
  }
  const pkt = (k: string) => P[k] as string;
  const judge = (hs: string[]) => sc.run<Judged[]>(JUDGE, hs);

  it.each([['6in6', 6], ['4in6', 6], ['4in4', 4], ['6in4', 4]] as const)('%s: outer UDP to the port, checksum right, inner unchanged; the back gives the inner packet back', async (k, fam) => {
    const r = run(fp, pkt(k));
    expect(r.verdict).toBeGreaterThanOrEqual(0);
    expect(r.out.length).toBe(1);
    const [j] = await judge(r.out);
    const inner = pkt(k);
    expect(j).toMatchObject({ src: fam === 6 ? SRC6 : SRC4, dst: fam === 6 ? B6 : B4, dport: PORT, ulen: inner.length / 2 + 8, inner, csum_ok: true });
    expect(j!.csum).toBe(j!.csum_right);
    expect(j!.sport).toBeGreaterThanOrEqual(49152);
    if (fam === 6) expect(j).toMatchObject({ hlim: 65, tc: k === '6in6' || k === '4in6' ? 0x2a : 0 });
    else expect(j).toMatchObject({ ttl: 65, df: true, ip_csum_ok: true });
    // through the back: exactly the inner packet (the kernel's forwarding takes the inner hop)
    const b = run(bp, r.out[0]!);
    expect(b.verdict).toBeGreaterThanOrEqual(0);
    expect(b.out).toEqual([inner]);
    expect(bcounters[dropIndex('malformed')]).toBe(0);
  });

  it('big packets (outer checksum verified natively): any flipped bit is malformed, the packet left as it was', () => {
    for (const [k, outer] of [['6in6', 48], ['6in4', 28]] as const) {
      const wrapped = run(fp, pkt(k)).out[0]!;
      expect(wrapped.length / 2).toBeGreaterThan(512);
      expect(run(bp, wrapped).out).toEqual([pkt(k)]);
      for (const at of [outer + 12, wrapped.length / 2 - 1, wrapped.length / 2 - 300]) {
        const b = Buffer.from(wrapped, 'hex');
        b[at] ^= 0x08;
        const buf = new Uint8Array(128 + b.length).fill(0xa5);
        buf.set(b, 128);
        tx.reset();
        expect(bp.process(buf, 128, b.length, new Uint8Array(0), 0, tx)).toBe(dropVerdict(dropIndex('malformed')));
        expect(Buffer.from(buf.subarray(128)).equals(b)).toBe(true);
      }
    }
  });

  it('source ports follow the inner flow: one port per flow, spread across flows', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 64; i++) {
      const b = Buffer.from(pkt('4in4'), 'hex');
      b[20] = 0x90; b[21] = i; // TCP source port 36864 + i
      const r = run(fp, b.toString('hex'));
      const o = Buffer.from(r.out[0]!, 'hex');
      const sport = (o[20] << 8) | o[21];
      const again = Buffer.from(run(fp, b.toString('hex')).out[0]!, 'hex');
      expect((again[20] << 8) | again[21]).toBe(sport);
      seen.add(sport);
    }
    expect(seen.size).toBeGreaterThan(56); // 64 flows over 16384 ports: collisions are rare
  });

  it('tunnel MTU is 8 bytes smaller: IPv6 1452 fits in 1500, 1453 gets Packet Too Big 1452', async () => {
    expect(run(fp, pkt('6in6_1452')).out.length).toBe(1);
    const r = run(fp, pkt('6in6_1453'));
    expect(r.verdict).toBe(dropVerdict(dropIndex('too_big')));
    const b = Buffer.from(r.out[0]!, 'hex');
    expect(b[40]).toBe(2); // ICMPv6 Packet Too Big
    expect(b.readUInt32BE(44)).toBe(1452);
  });

  it('IPv4 without DF is fragmented to fit, each fragment its own UDP tunnel packet; with DF: Frag Needed 1472', async () => {
    const r = run(fp, pkt('4in4_nodf_1500'));
    expect(r.out.length).toBe(2);
    const js = await judge(r.out);
    for (const j of js) {
      expect(j.len).toBeLessThanOrEqual(1500);
      expect(j.csum).toBe(j.csum_right);
      expect(j.csum_ok).toBe(true);
      expect(j.dport).toBe(PORT);
    }
    const d = run(fp, pkt('4in4_df_1473'));
    expect(d.verdict).toBe(dropVerdict(dropIndex('too_big')));
    const b = Buffer.from(d.out[0]!, 'hex');
    expect([b[20], b[21], b.readUInt16BE(26)]).toEqual([3, 4, 1472]);
  });

  it('a fabric Packet Too Big quoting one of our UDP tunnel packets lowers the tunnel MTU (1400 - 48); another port is not ours', async () => {
    const other = run(fp, pkt('ptb_udp_other_port'));
    expect(other.verdict).toBeLessThan(0);
    expect(counters[eventIndex('pmtu_learned')]).toBe(0);
    const r = run(fp, pkt('ptb_udp'));
    expect(r.verdict).toBe(VERDICT_CONSUMED);
    expect(counters[eventIndex('pmtu_learned')]).toBe(1);
    const b = Buffer.from(r.out[0]!, 'hex'); // relayed to the client
    expect(b.readUInt32BE(44)).toBe(1352);
    expect(run(fp, pkt('6in6_1452')).verdict).toBe(dropVerdict(dropIndex('too_big')));
  });

  it('back: IPv4 UDP tunnel unwrapped; outer fragments reassembled then unwrapped', () => {
    expect(run(bp, pkt('good4')).out).toEqual([pkt('inner4')]);
    const fr = P['frags'] as string[];
    expect(fr.length).toBe(2);
    expect(run(bp, fr[0]!).verdict).toBe(VERDICT_CONSUMED);
    expect(run(bp, fr[1]!).out).toEqual([pkt('frag_inner')]);
    expect(bcounters[eventIndex('tunnel_reassembled')]).toBe(1);
  });

  it.each([
    ['bad UDP checksum', 'bad_csum', 'malformed'],
    ['UDP length beyond the packet', 'bad_len', 'malformed'],
    ['GUE variant 0 header (first nibble 0)', 'gue0', 'malformed'],
    ['nested UDP tunnel to the same back', 'nested', 'malformed'],
    ['inner destination not a service', 'not_service', 'not_service'],
    ['source outside allowedFronts', 'stranger', 'unauthorized_source'],
    ['another UDP port (encap mode)', 'wrong_port', 'not_service'],
  ] as const)('back refuses %s: %s', (_d, k, reason) => {
    const r = run(bp, pkt(k));
    expect(r).toEqual({ verdict: dropVerdict(dropIndex(reason)), out: [] });
    expect(bcounters[dropIndex(reason)]).toBe(1);
  });

  it('mode auto: UDP from a stranger or to another port is translated like any packet; mode translate never unwraps', () => {
    bp = new BackProcessor(backRole(2), bcounters);
    for (const k of ['stranger', 'wrong_port']) {
      const r = run(bp, pkt(k));
      expect(r.verdict).toBeGreaterThanOrEqual(0);
      expect(r.out[0]!.slice(48, 80)).toBe('20010db8000500000000000000000080'); // B -> S
    }
    expect(run(bp, pkt('good6')).out).toEqual([pkt('inner6')]);
    bp = new BackProcessor(backRole(0), bcounters);
    const t = run(bp, pkt('good6'));
    expect(t.out[0]!.length).toBe(pkt('good6').length); // translated, still wrapped
  });

  it('config: encap.udpPort and udpPort are validated and reach the roles', () => {
    const f = frontConfigFromValue({ tun: { name: 'x0' }, services: [S6], table: './t.yaml', encap: { udpPort: 70000 } }, 'f.yaml');
    expect(f.errors.map((e) => e.entry)).toContain('encap.udpPort');
    const ok = frontConfigFromValue({ tun: { name: 'x0' }, services: [S6], table: './t.yaml', encap: { udpPort: PORT } }, 'f.yaml');
    expect(ok.errors).toEqual([]);
    expect(ok.config!.encap.udpPort).toBe(PORT);
    const b = backConfigFromValue({ tun: { name: 'y0' }, addresses: [{ address: B6, service: S6 }], allowedFronts: [SRC6 + '/128'], udpPort: -1 }, 'b.yaml');
    expect(b.errors.map((e) => e.entry)).toContain('udpPort');
    const bo = backConfigFromValue({ tun: { name: 'y0' }, addresses: [{ address: B6, service: S6 }], allowedFronts: [SRC6 + '/128'], udpPort: PORT }, 'b.yaml');
    expect(bo.errors).toEqual([]);
    expect(bo.config!.udpPort).toBe(PORT);
  });
});
