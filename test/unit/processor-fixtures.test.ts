// The front and back processors against the fixture tables in test/fixtures (inputs and expected
// outputs built offline by scapy from the SPEC / RFC rules): every case through the batch loop and
// the fake TUN, the written packets compared byte for byte and in order, the counter deltas by
// name. Then the tables' coverage: every drop reason, decision reason, ICMP error and event counter
// both processors can produce, and every translate / encapsulation shape, has a case.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NAMED_COUNTERS, runProcessorCase, type ProcessorCase } from '../helpers/processor-fixture.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const load = (name: string): ProcessorCase[] => JSON.parse(readFileSync(join(DIR, name), 'utf8')) as ProcessorCase[];
const FRONT = load('front.json');
const BACK = load('back.json');
const ALL = [...FRONT, ...BACK];

describe.each([
  ['front', FRONT],
  ['back', BACK],
] as const)('%s processor fixture table', (_role, cases) => {
  it.each(cases.map((c) => [c.description, c] as const))('%s', (_d, c) => {
    const r = runProcessorCase(c);
    expect(r.written).toEqual(c.outputs);
    // virtio_net_hdr without num_buffers (its last 2 bytes: ignored by the kernel on write)
    const hdr = (v: string[]): string[] => v.map((x) => x.slice(0, 20));
    expect(hdr(r.writtenVnet)).toEqual(hdr(c.outputsVnet ?? []));
    expect(r.tapWritten).toEqual(c.tapOutputs ?? []);
    expect(hdr(r.tapWrittenVnet)).toEqual(hdr(c.tapOutputsVnet ?? []));
    expect(r.counters).toEqual(c.counters);
    expect(r.rxPackets).toBe(c.rxPackets ?? c.inputs.length);
    expect(r.readBatches).toBe(c.readBatches ?? c.inputs.length); // one read batch per input (event.read_batches)
    expect(r.txPackets).toBe(c.txPackets ?? c.outputs.length);
  });
});

/** What a packet is: 'v4' / 'v6', or '4in6' etc. for a tunnel packet (outer protocol 4 / 41). */
function shape(hex: string): string {
  const b = Buffer.from(hex, 'hex');
  const v = b[0]! >> 4;
  let proto = v === 4 ? b[9]! : b[6]!;
  if (v === 6 && proto === 44) proto = b[40]!; // outer fragment: the Fragment header's next header
  const fragOff = v === 4 ? ((b[6]! & 0x1f) << 8) | b[7]! : proto === b[40] && b[6] === 44 ? ((b[42]! << 8) | b[43]!) & 0xfff8 : 0;
  if ((proto === 4 || proto === 41) && fragOff === 0) return `${proto === 4 ? 4 : 6}in${v}`;
  return `v${v}`;
}

describe('fixture coverage', () => {
  it('every named counter (drops, decisions, ICMP errors, events) is produced by some case', () => {
    const covered = new Set(ALL.flatMap((c) => Object.keys(c.counters)));
    const missing = NAMED_COUNTERS.map(([n]) => n).filter((n) => !covered.has(n));
    expect(missing).toEqual([]);
    // each case is checked against its counters above, so a name listed here was really produced
    for (const c of ALL) for (const k of Object.keys(c.counters)) expect(NAMED_COUNTERS.map(([n]) => n)).toContain(k);
  });

  it('each role has a case for every counter it can produce', () => {
    // What each processor (with the loop, ICMP emitter, tunnel MTU and reassembly it uses) counts
    const front = NAMED_COUNTERS.map(([n]) => n).filter((n) => !['event.lbsp_stamped', 'event.lbsp_stamp_skipped', 'event.mss_clamped', 'event.return_encapsulated'].includes(n));
    const back = [
      'drop.read_error', 'drop.malformed', 'drop.not_service', 'drop.unauthorized_source', 'drop.too_big', 'drop.write_error',
      'icmp.packet_too_big', 'icmp.frag_needed',
      'event.lbsp_stamped', 'event.lbsp_stamp_skipped', 'event.mss_clamped', 'event.return_encapsulated', 'event.fragmented',
      'event.tunnel_reassembled', 'event.fragments_held', 'event.icmp_rate_limited', 'event.multicast_ignored',
    ];
    const of = (cases: ProcessorCase[]) => new Set(cases.flatMap((c) => Object.keys(c.counters)));
    const f = of(FRONT), b = of(BACK);
    expect(front.filter((n) => !f.has(n))).toEqual([]);
    expect(back.filter((n) => !b.has(n))).toEqual([]);
  });

  it('every forwarding shape of both roles has a case', () => {
    const seen = new Set<string>();
    for (const c of ALL) {
      const ins = c.inputs.map(shape);
      const outs = c.outputs.map(shape);
      const drop = Object.keys(c.counters).some((k) => k.startsWith('drop.'));
      if (drop) continue;
      if (c.vnet !== undefined) seen.add(c.outputs.length > c.inputs.length ? `${c.role} offload split` : `${c.role} offload whole`);
      for (let i = 0; i < outs.length; i++) {
        const o = outs[i]!;
        const input = ins[Math.min(i, ins.length - 1)]!;
        if (c.role === 'front' && o.includes('in') && !input.includes('in')) seen.add(`front encap ${o}`);
        if (c.role === 'front' && o.includes('in') && input.includes('in')) seen.add(`front multi-stage ${input} -> ${o}`);
        if (c.role === 'front' && !o.includes('in') && input.includes('in')) seen.add(`front unwrap ${input}`);
        if (c.role === 'back' && !o.includes('in') && input.includes('in')) seen.add(`back decap ${input}`);
        if (c.role === 'back' && o.includes('in') && !input.includes('in')) seen.add(`back return encap ${o}`);
        if (!o.includes('in') && !input.includes('in')) seen.add(`${c.role} ${o}`);
      }
    }
    const want = [
      'front v4', 'front v6', 'front encap 4in4', 'front encap 6in6', 'front encap 4in6', 'front encap 6in4',
      'front multi-stage 6in6 -> 6in6', 'front unwrap 6in6', 'front unwrap 4in4',
      'back v4', 'back v6', 'back decap 4in4', 'back decap 6in6', 'back decap 4in6', 'back decap 6in4',
      'back return encap 6in6', 'back return encap 4in6',
      'front offload split', 'front offload whole',
    ];
    expect(want.filter((w) => !seen.has(w))).toEqual([]);
  });
});
