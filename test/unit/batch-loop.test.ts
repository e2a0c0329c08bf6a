// BatchLoop over a FakeTun (no kernel): the transmit queue is written in the order processors
// filled it, across the receive and aux slabs; aux slots are reused only after they were written;
// packets lost on read are counted; a vanished device reaches the device-error path.
import { describe, expect, it } from 'vitest';
import { BatchLoop } from '../../shared/engine/batch-loop.js';
import { VERDICT_QUEUED, type PacketProcessor } from '../../shared/engine/packet-processor.js';
import type { TxQueue } from '../../shared/engine/tx-queue.js';
import { FakeTun } from '../../shared/tun/fake-tun.js';
import { TunGoneError } from '../../shared/tun/tun-device.js';
import { C_RX_PACKETS, C_TX_PACKETS, dropIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';

/** A 28-byte IPv4/UDP packet whose last byte is `tag`. */
function pkt(tag: number): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p[3] = 28;
  p[8] = 64;
  p[9] = 17;
  p[27] = tag;
  return p;
}

/** Before forwarding packet k in place, queues `extra` generated copies of it (tag + 100 + j) from aux slots. */
class Copier implements PacketProcessor {
  constructor(private readonly extra: (tag: number) => number) {}
  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const tag = buf[off + len - 1]!;
    for (let j = 0; j < this.extra(tag); j++) {
      const o = tx.aux.claim();
      tx.aux.buf.set(buf.subarray(off, off + len), o);
      tx.aux.buf[o + len - 1] = tag + 100 + j;
      tx.push(tx.aux.buf, o, len);
    }
    tx.forward(buf, off, len, vnet, vnetOff);
    return VERDICT_QUEUED;
  }
}

function run(p: PacketProcessor, tags: number[], batch = 8) {
  const dev = new FakeTun({ batchSize: batch, queueLimit: 1000 });
  const counters = newCounterBlock();
  const errors: Error[] = [];
  const loop = new BatchLoop(dev, p, counters, (e) => errors.push(e));
  for (const t of tags) dev.inject(pkt(t));
  loop.drain();
  return { dev, counters, errors, loop, out: dev.takeWritten().map((w) => w.data[27]!) };
}

describe('BatchLoop transmit queue', () => {
  it('writes generated and forwarded packets in the order the processor queued them', () => {
    const { out, counters } = run(new Copier((t) => (t % 2 === 0 ? 1 : 0)), [0, 1, 2, 3]);
    expect(out).toEqual([100, 0, 1, 102, 2, 3]);
    expect(counters[C_RX_PACKETS]).toBe(4);
    expect(counters[C_TX_PACKETS]).toBe(6);
  });

  it('more generated packets than aux slots in one batch: written early, none overwritten or lost', () => {
    // 8 aux slots per batch of 8; every packet generates 3
    const tags = [0, 1, 2, 3, 4, 5, 6, 7];
    const { out, counters } = run(new Copier(() => 3), tags);
    expect(out).toEqual(tags.flatMap((t) => [t + 100, t + 101, t + 102, t]));
    expect(counters[C_TX_PACKETS]).toBe(32);
    expect(counters[dropIndex('write_error')]).toBe(0);
  });

  it('a packet lost on read (longer than a slot) is received and dropped as read_error', () => {
    const dev = new FakeTun({ batchSize: 4, slotSize: 256 });
    const counters = newCounterBlock();
    const loop = new BatchLoop(dev, new Copier(() => 0), counters, () => undefined);
    dev.inject(new Uint8Array(400));
    dev.inject(pkt(5));
    loop.drain();
    expect(dev.takeWritten().map((w) => w.data[27])).toEqual([5]);
    expect(counters[dropIndex('read_error')]).toBe(1);
    expect(counters[C_RX_PACKETS]).toBe(2);
    expect(counters[C_TX_PACKETS]).toBe(1);
  });

  it('a device that vanishes under read() goes to the device-error path once, and the loop stops', () => {
    const dev = new FakeTun({ batchSize: 4 });
    const errors: Error[] = [];
    const loop = new BatchLoop(dev, new Copier(() => 0), newCounterBlock(), (e) => errors.push(e));
    dev.inject(pkt(1));
    dev.simulateGone();
    expect(() => loop.drain()).not.toThrow();
    expect(errors.length).toBe(1);
    expect(errors[0]).toBeInstanceOf(TunGoneError);
    expect(loop.drain()).toBe(0);
    expect(errors.length).toBe(1);
  });
});
