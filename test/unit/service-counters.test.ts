// The `service` label's counters as the processors bump them (FrontProcessor / BackProcessor.process,
// no TUN): per service S, wire packets and bytes of what is balanced (front) or forwarded to S (back),
// the front's decisions by service and reason, GSO super-packets as their segments, nothing for
// drops; the back's slots as the main thread gives them (ServiceSlots), across a reload.
import { describe, expect, it } from 'vitest';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { FrontProcessor } from '../../front/front-processor.js';
import type { FrontRole } from '../../front/front-role.js';
import { REASON_NAMES } from '../../front/decision.js';
import { BackProcessor } from '../../back/back-processor.js';
import { backRoleFromConfig } from '../../back/back-role.js';
import { backConfigFromValue } from '../../back/back-config.js';
import { ServiceSlots } from '../../back/service-slots.js';
import {
  backendPacketsIndex,
  DECISION_REASONS,
  decisionIndex,
  dropIndex,
  MAX_SERVICE_SLOTS,
  newCounterBlock,
  serviceDecisionIndex,
  servicePacketsIndex,
  SERVICE_STRIDE,
  type DecisionReason,
} from '../../shared/metrics/counter-layout.js';
import { VERDICT_QUEUED } from '../../shared/engine/packet-processor.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { writeIpv4HeaderChecksum, writeL4Checksum } from '../../shared/packet/checksum.js';
import { encapsulate } from '../../shared/packet/encap.js';
import { parseAddress } from '../../shared/table/addr.js';
import { HEADROOM } from '../../shared/tun/tun-device.js';
import { prepareRxVnet, setVnetHeader, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6 } from '../../shared/tun/vnet-header.js';
import { newTxQueue } from '../helpers/tx-queue.js';

const S6 = '2001:db8:5::80';
const S4 = '192.0.2.80';
const words = (a: string) => parseAddress(a)!.words;

/** A UDP packet (or TCP with `tcpPayload`) from src to dst at HEADROOM in a fresh slot-sized buffer. */
function packet(src: string, dst: string, o: { sport?: number; payload?: number; label?: number; tcpPayload?: number } = {}): { buf: Uint8Array; off: number; len: number } {
  const v6 = src.includes(':');
  const hdr = v6 ? 40 : 20;
  const tcp = o.tcpPayload !== undefined;
  const l4 = tcp ? 20 + o.tcpPayload! : 8 + (o.payload ?? 32);
  const len = hdr + l4;
  const buf = new Uint8Array(HEADROOM + len + 64);
  const off = HEADROOM;
  const p = buf.subarray(off);
  if (v6) {
    const label = o.label ?? 0;
    p[0] = 0x60; p[1] = (label >> 16) & 0x0f; p[2] = (label >> 8) & 0xff; p[3] = label & 0xff;
    p[4] = l4 >> 8; p[5] = l4 & 0xff; p[6] = tcp ? 6 : 17; p[7] = 64;
    const s = words(src), d = words(dst);
    for (let k = 0; k < 4; k++) {
      new DataView(p.buffer, p.byteOffset).setUint32(8 + 4 * k, s[k]!);
      new DataView(p.buffer, p.byteOffset).setUint32(24 + 4 * k, d[k]!);
    }
  } else {
    p[0] = 0x45; p[2] = len >> 8; p[3] = len & 0xff; p[6] = 0x40; p[8] = 64; p[9] = tcp ? 6 : 17;
    new DataView(p.buffer, p.byteOffset).setUint32(12, words(src)[0]!);
    new DataView(p.buffer, p.byteOffset).setUint32(16, words(dst)[0]!);
    writeIpv4HeaderChecksum(p, 0);
  }
  const sport = o.sport ?? 40000;
  p[hdr] = sport >> 8; p[hdr + 1] = sport & 0xff; p[hdr + 2] = 0; p[hdr + 3] = 53;
  if (tcp) {
    p[hdr + 12] = 0x50; p[hdr + 13] = 0x10; // ACK
    p[hdr + 14] = 0xff;
  } else {
    p[hdr + 4] = l4 >> 8; p[hdr + 5] = l4 & 0xff;
  }
  for (let i = hdr + (tcp ? 20 : 8); i < len; i++) p[i] = i & 0xff;
  const info = new PacketInfo();
  expect(parsePacket(buf, off, len, info, 0x1e)).toBe(ParseError.OK);
  writeL4Checksum(buf, off, info);
  return { buf, off, len };
}

const svc = (c: Float64Array, slot: number) => ({ packets: c[servicePacketsIndex(slot)], bytes: c[servicePacketsIndex(slot) + 1] });
const dec = (c: Float64Array, slot: number) => Object.fromEntries(DECISION_REASONS.map((r) => [r, c[serviceDecisionIndex(slot, r)]]));
const sumSlots = (c: Float64Array, at: (slot: number) => number) => {
  let s = 0;
  for (let i = 0; i < MAX_SERVICE_SLOTS; i++) s += c[at(i)]!;
  return s;
};

describe('service counters, front', () => {
  const ctx: TableContext = { services: [S6, S4], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };
  const TABLE = {
    backs: {
      b1: { addresses: { [S6]: '2001:db8:b::1', [S4]: '198.51.100.1' } },
      b2: { addresses: { [S6]: '2001:db8:b::2', [S4]: '198.51.100.2' } },
    },
    pools: { web: { members: ['b1', 'b2'], key: 'label' } },
    routes: [
      { source: '2001:db8:c1::/48', to: 'b1' },
      { source: '2001:db8:c2::/48', to: 'web' },
      { source: '203.0.113.0/24', to: 'b2' },
    ],
  };
  const role: FrontRole = {
    lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64,
    flowTable: { size: 4096, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 },
  };
  function front(): { fp: FrontProcessor; c: Float64Array } {
    const v = validateTable(TABLE, 'table.yaml', ctx);
    expect(v.errors).toEqual([]);
    const slots = new Map<string, number>();
    const t = CompiledTable.compile(v.table!, {
      services: ctx.services, flowLabelEnabled: true, lbspEnabled: true, maglevSize: 251,
      slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
    });
    const c = newCounterBlock();
    const fp = new FrontProcessor(role, c, () => 1_000_000, 7);
    fp.setTable(t);
    return { fp, c };
  }
  const tx = newTxQueue(16);
  const send = (fp: FrontProcessor, p: { buf: Uint8Array; off: number; len: number }, vnet = new Uint8Array(0)) => {
    tx.reset();
    return fp.process(p.buf, p.off, p.len, vnet, 0, tx);
  };

  it('decide() reasons and the service decision counters name the same things', () => {
    // the processor maps decide()'s REASON_* to the decision counters by name
    for (const r of ['lbsp_server', 'source_prefix', 'flow_label'] as const) expect(REASON_NAMES).toContain(r);
    expect(SERVICE_STRIDE).toBe(2 + DECISION_REASONS.length);
  });

  it('counts packets, bytes and decisions under the service the packet is for (slot = its index in services)', () => {
    const { fp, c } = front();
    // three packets of one flow to S6: the first decided by source prefix, then from the flow table
    const a = [packet('2001:db8:c1::10', S6, { payload: 10 }), packet('2001:db8:c1::10', S6, { payload: 20 }), packet('2001:db8:c1::10', S6, { payload: 30 })];
    for (const p of a) expect(send(fp, p)).toBe(VERDICT_QUEUED);
    // a labelled packet into the label-keyed pool: flow_label
    const l = packet('2001:db8:c2::10', S6, { label: 0x12345, payload: 5 });
    expect(send(fp, l)).toBe(VERDICT_QUEUED);
    // two flows to S4
    const b = [packet('203.0.113.10', S4, { sport: 1, payload: 100 }), packet('203.0.113.11', S4, { sport: 2, payload: 200 })];
    for (const p of b) expect(send(fp, p)).toBe(VERDICT_QUEUED);

    expect(svc(c, 0)).toEqual({ packets: 4, bytes: a.reduce((s, p) => s + p.len, 0) + l.len });
    expect(svc(c, 1)).toEqual({ packets: 2, bytes: b[0]!.len + b[1]!.len });
    expect(dec(c, 0)).toEqual({ lbsp_server: 0, source_prefix: 1, flow_label: 1, flow_table: 2 });
    expect(dec(c, 1)).toEqual({ lbsp_server: 0, source_prefix: 2, flow_label: 0, flow_table: 0 });
    // no other slot moved, and the split adds up to the unlabelled counters
    expect(sumSlots(c, servicePacketsIndex)).toBe(6);
    expect(sumSlots(c, servicePacketsIndex)).toBe(c[backendPacketsIndex(0)]! + c[backendPacketsIndex(1)]!);
    for (const r of DECISION_REASONS) {
      expect(sumSlots(c, (s) => serviceDecisionIndex(s, r as DecisionReason)), r).toBe(c[decisionIndex(r)]);
    }
  });

  it('a dropped packet counts under no service', () => {
    const { fp, c } = front();
    send(fp, packet('2001:db8:99::1', S6)); // no route covers the source
    send(fp, packet('2001:db8:c1::10', '2001:db8:5::99')); // not a service
    expect(c[dropIndex('no_route')]).toBe(1);
    expect(c[dropIndex('not_service')]).toBe(1);
    expect(sumSlots(c, servicePacketsIndex)).toBe(0);
    for (const r of DECISION_REASONS) expect(sumSlots(c, (s) => serviceDecisionIndex(s, r as DecisionReason))).toBe(0);
  });

  it('a GSO super-packet counts as its wire segments, each with its own headers', () => {
    const { fp, c } = front();
    const p = packet('2001:db8:c1::10', S6, { tcpPayload: 3000 });
    const vnet = new Uint8Array(12);
    setVnetHeader(vnet, 0, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 60, 1000, 40, 16);
    expect(prepareRxVnet(p.buf, p.off, p.len, vnet, 0)).toBe(3);
    expect(send(fp, p, vnet)).toBe(VERDICT_QUEUED);
    expect(svc(c, 0)).toEqual({ packets: 3, bytes: p.len + 2 * 60 });
    expect(c[backendPacketsIndex(0)]).toBe(3); // as the backend counter counts them
    expect(dec(c, 0).source_prefix).toBe(1); // one decision for the super-packet
  });
});

describe('service counters, back', () => {
  const B6 = '2001:db8:b::1';
  const B4 = '198.51.100.1';
  const F6 = '2001:db8:f::1';
  const cfg = (addresses: { address: string; service: string }[]) => {
    const r = backConfigFromValue({ addresses, allowedFronts: ['2001:db8:f::/64'] }, 'back.yaml');
    expect(r.errors).toEqual([]);
    return r.config!;
  };
  const tx = newTxQueue(16);
  const send = (bp: BackProcessor, p: { buf: Uint8Array; off: number; len: number }) => {
    tx.reset();
    return bp.process(p.buf, p.off, p.len, new Uint8Array(0), 0, tx);
  };
  /** A 6in6 tunnel packet from front F6 to B6 around `inner`. */
  function tunnel(inner: { buf: Uint8Array; off: number; len: number }): { buf: Uint8Array; off: number; len: number; innerLen: number } {
    const info = new PacketInfo();
    parsePacket(inner.buf, inner.off, inner.len, info, 0x1e);
    const o = encapsulate(inner.buf, inner.off, info, 6, Uint32Array.from(words(F6)), Uint32Array.from(words(B6)), 64, 0);
    return { buf: inner.buf, off: o, len: inner.len + 40, innerLen: inner.len };
  }

  it('translated (B -> S) and unwrapped packets count under S, in the slot the main thread gave it; drops under none', () => {
    const slots = new ServiceSlots();
    slots.slotOf('2001:db8:5::99'); // some other service holds slot 0: slots are not positions
    const c = newCounterBlock();
    const bp = new BackProcessor(backRoleFromConfig(cfg([{ address: B6, service: S6 }, { address: B4, service: S4 }]), slots.slotOf), c, () => 0, 3);
    expect([slots.slotOf(S6), slots.slotOf(S4)]).toEqual([1, 2]);
    const t6 = packet('2001:db8:c1::10', B6, { payload: 50 });
    const t4 = packet('203.0.113.10', B4, { payload: 70 });
    expect(send(bp, t6)).toBe(VERDICT_QUEUED);
    const t4b = packet('203.0.113.10', B4, { payload: 70 });
    expect(send(bp, t4)).toBe(VERDICT_QUEUED);
    expect(send(bp, t4b)).toBe(VERDICT_QUEUED);
    const d = tunnel(packet('2001:db8:c1::10', S6, { payload: 80 }));
    expect(send(bp, d)).toBe(VERDICT_QUEUED);
    expect(svc(c, 1)).toEqual({ packets: 2, bytes: t6.len + d.innerLen }); // the inner packet's bytes
    expect(svc(c, 2)).toEqual({ packets: 2, bytes: t4.len + t4b.len });
    expect(svc(c, 0)).toEqual({ packets: 0, bytes: 0 });
    // not owned, an inner destination that is not a service: dropped, no service counted
    send(bp, packet('2001:db8:c1::10', '2001:db8:b::77'));
    send(bp, tunnel(packet('2001:db8:c1::10', '2001:db8:5::98')));
    expect(c[dropIndex('not_service')]).toBe(2);
    expect(sumSlots(c, servicePacketsIndex)).toBe(4);
    // the back takes no decision
    for (const r of DECISION_REASONS) expect(sumSlots(c, (s) => serviceDecisionIndex(s, r as DecisionReason))).toBe(0);
  });

  it('a GSO super-packet translated to S counts as its wire segments', () => {
    const c = newCounterBlock();
    const bp = new BackProcessor(backRoleFromConfig(cfg([{ address: B6, service: S6 }])), c, () => 0, 3);
    const p = packet('2001:db8:c1::10', B6, { tcpPayload: 2500 });
    const vnet = new Uint8Array(12);
    setVnetHeader(vnet, 0, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 60, 1000, 40, 16);
    expect(prepareRxVnet(p.buf, p.off, p.len, vnet, 0)).toBe(3);
    tx.reset();
    expect(bp.process(p.buf, p.off, p.len, vnet, 0, tx)).toBe(VERDICT_QUEUED);
    expect(svc(c, 0)).toEqual({ packets: 3, bytes: p.len + 2 * 60 });
  });

  it('a reload that replaces a service: the kept one keeps its slot, the new one counts in a fresh slot', () => {
    const slots = new ServiceSlots();
    const c = newCounterBlock();
    const before = cfg([{ address: B6, service: S6 }, { address: B4, service: S4 }]);
    const bp = new BackProcessor(backRoleFromConfig(before, slots.slotOf), c, () => 0, 3);
    send(bp, packet('203.0.113.10', B4));
    const S4b = '192.0.2.81';
    const after = cfg([{ address: B6, service: S6 }, { address: B4, service: S4b }]);
    bp.update({ type: 'role', role: backRoleFromConfig(after, slots.slotOf) });
    slots.retain(after.addresses.map((a) => a.service));
    expect(slots.states()).toEqual([{ name: S6, slot: 0 }, { name: S4b, slot: 2 }]);
    const p = packet('203.0.113.10', B4);
    send(bp, p);
    send(bp, packet('2001:db8:c1::10', B6));
    expect(svc(c, 1).packets).toBe(1); // S4's total stays where it was (its series leaves /metrics)
    expect(svc(c, 2)).toEqual({ packets: 1, bytes: p.len });
    expect(svc(c, 0).packets).toBe(1);
  });
});

describe('ServiceSlots', () => {
  it('keeps a slot per address, frees the ones a reload drops, and uses fresh slots before freed ones', () => {
    const reused: number[] = [];
    const s = new ServiceSlots((slot) => reused.push(slot));
    expect(s.slotOf('a')).toBe(0);
    expect(s.slotOf('b')).toBe(1);
    expect(s.slotOf('a')).toBe(0);
    s.retain(['b']);
    expect(s.states()).toEqual([{ name: 'b', slot: 1 }]);
    expect(s.slotOf('a')).toBe(2); // back again: a fresh slot, counting from 0
    for (let i = 3; i < MAX_SERVICE_SLOTS; i++) expect(s.slotOf(`x${i}`)).toBe(i);
    expect(reused).toEqual([]);
    s.retain(['b', 'a', ...Array.from({ length: MAX_SERVICE_SLOTS - 3 }, (_, k) => `x${k + 3}`)]);
    // every slot used once: the freed one (slot 0) is reused, and the registry told to rebase it
    expect(s.slotOf('new')).toBe(0);
    expect(reused).toEqual([0]);
    expect(() => s.slotOf('one too many')).toThrow(/more than 256 distinct services/);
  });

  it('the configs refuse more services than slots', async () => {
    const many = Array.from({ length: MAX_SERVICE_SLOTS + 1 }, (_, i) => ({ address: `2001:db8:b::${(i + 1).toString(16)}`, service: `2001:db8:5::${(i + 1).toString(16)}` }));
    const r = backConfigFromValue({ addresses: many }, 'back.yaml');
    expect(r.errors.map((e) => `${e.entry}: ${e.reason}`)).toContain(`addresses: at most ${MAX_SERVICE_SLOTS} distinct services, got ${MAX_SERVICE_SLOTS + 1}`);
    expect(backConfigFromValue({ addresses: many.slice(0, MAX_SERVICE_SLOTS) }, 'back.yaml').errors).toEqual([]);
    const { frontConfigFromValue } = await import('../../front/front-config.js');
    const f = frontConfigFromValue({ services: many.map((m) => m.service), table: './table.yaml' }, '/etc/mslb/front.yaml');
    expect(f.errors.map((e) => `${e.entry}: ${e.reason}`)).toContain(`services: at most ${MAX_SERVICE_SLOTS} service addresses, got ${MAX_SERVICE_SLOTS + 1}`);
  });
});
