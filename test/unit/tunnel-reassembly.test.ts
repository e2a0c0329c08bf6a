// Outer reassembly at a tunnel endpoint, inside one batch: a completed tunnel packet whose unwrapped
// inner packet is refused (hop limit 1: Time Exceeded) must not lose or corrupt the packets the
// processor generated around it. Packets are built by hand with the codec (no Python).
import { describe, expect, it } from 'vitest';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { eventIndex, icmpIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue, queued } from '../helpers/tx-queue.js';
import { FrontProcessor } from '../../front/front-processor.js';
import { acceptPrefixes } from '../../front/tunnel-accept.js';
import { PmtuCache } from '../../shared/tunnel/path-mtu-cache.js';
import { ipv6FragmentCount, ipv6FragmentStep, writeIpv6Fragment } from '../../shared/packet/ipv6-fragment.js';
import { words } from '../vectors/load.js';

const S6 = '2001:db8:5::80';
const ctx: TableContext = { services: [S6], mode: 'encap', encap: { source: 'service', source4: '', source6: '' } };
const TABLE = { backs: { b1: { addresses: { [S6]: '2001:db8:b::1' }, mode: 'encap' } }, routes: [{ source: '2001:db8:c1::/48', to: 'b1' }] };

function put6(b: Uint8Array, o: number, addr: string): void {
  const w = words(addr);
  for (let i = 0; i < 4; i++) {
    b[o + 4 * i] = w[i]! >>> 24;
    b[o + 4 * i + 1] = (w[i]! >>> 16) & 255;
    b[o + 4 * i + 2] = (w[i]! >>> 8) & 255;
    b[o + 4 * i + 3] = w[i]! & 255;
  }
}

/** IPv6 header + `payload` bytes of next header nh. */
function ipv6(src: string, dst: string, nh: number, hlim: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(40 + payload.length);
  b[0] = 0x60;
  b[4] = payload.length >> 8;
  b[5] = payload.length & 255;
  b[6] = nh;
  b[7] = hlim;
  put6(b, 8, src);
  put6(b, 24, dst);
  b.set(payload, 40);
  return b;
}

/** UDP datagram (checksum left 0: the front does not verify it) with n payload bytes. */
function udp(sport: number, n: number): Uint8Array {
  const u = new Uint8Array(8 + n);
  u[0] = sport >> 8; u[1] = sport & 255; u[2] = 0; u[3] = 7;
  u[4] = (8 + n) >> 8; u[5] = (8 + n) & 255;
  for (let i = 0; i < n; i++) u[8 + i] = (i * 13) & 255;
  return u;
}

/** Outer IPv6 fragments (Fragment header) of the tunnel packet p, cut for a 700-byte MTU. */
function fragments(p: Uint8Array): Uint8Array[] {
  const buf = new Uint8Array(128 + p.length);
  buf.set(p, 128);
  const step = ipv6FragmentStep(700);
  const out: Uint8Array[] = [];
  for (let k = 0; k < ipv6FragmentCount(p.length, step); k++) {
    const f = new Uint8Array(2048);
    const n = writeIpv6Fragment(buf, 128, p.length, step, k, 0x5151, f, 0);
    out.push(f.slice(0, n));
  }
  return out;
}

describe('tunnel reassembly inside a batch', () => {
  const v = validateTable(TABLE, 'fixture.yaml', ctx);
  const table = CompiledTable.compile(v.table!, { services: [S6], flowLabelEnabled: true, lbspEnabled: true, maglevSize: 251, slotOf: () => 0 });

  it('a reassembled packet refused after unwrapping keeps the generated packets before and after it intact', () => {
    const counters = newCounterBlock();
    const fp = new FrontProcessor(
      {
        lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64,
        icmp: { ratePerSecond: 100, burst: 50 },
        acceptTunnelFrom: acceptPrefixes(['2001:db8:f1::/64']),
        tunMtu: 1500,
        pmtu: PmtuCache.create(1500).toShared(),
      },
      counters,
      () => 1_000_000,
    );
    fp.setTable(table);
    const tx = newTxQueue(8); // one batch: nothing is written (or reset) between the packets
    const send = (p: Uint8Array): number => {
      const buf = new Uint8Array(128 + p.length + 64);
      buf.set(p, 128);
      return fp.process(buf, 128, p.length, new Uint8Array(0), 0, tx);
    };
    // inner hop limit 1 from a stage-1 gateway: the front's hop takes it to 0 -> Time Exceeded to c1::10
    const tunnel = ipv6('2001:db8:f1::5', '2001:db8:f::1', 41, 62, ipv6('2001:db8:c1::10', S6, 17, 1, udp(6000, 1200)));
    for (const f of fragments(tunnel)) send(f);
    expect(counters[eventIndex('tunnel_reassembled')]).toBe(1);
    // a client's packet arriving with hop limit 0 -> Time Exceeded to c1::20, later in the same batch
    send(ipv6('2001:db8:c1::20', S6, 17, 0, udp(6001, 100)));
    expect(counters[icmpIndex('time_exceeded')]).toBe(2);
    const dsts = [];
    for (const q of queued(tx)) {
      expect(q.bytes[40], 'ICMPv6 Time Exceeded').toBe(3);
      dsts.push(q.bytes.subarray(24, 40).toString('hex'));
    }
    expect(dsts).toEqual(['20010db800c100000000000000000010', '20010db800c100000000000000000020']);
  });
});
