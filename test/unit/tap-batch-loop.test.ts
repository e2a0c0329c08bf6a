// The batch loop with a tunnel TAP next to its TUN (FakeTun for both): entries queued with
// forwardTap go to the TAP, the others to the TUN, in queue order across the two devices; a TAP
// frame counts as its wire segments without its Ethernet header, and tunnel_gso_writes once; a frame
// the kernel refuses loses all its segments (write_error), and the next frames still go out.
import { describe, expect, it } from 'vitest';
import { BatchLoop } from '../../shared/engine/batch-loop.js';
import { VERDICT_QUEUED, type PacketProcessor } from '../../shared/engine/packet-processor.js';
import type { TxQueue } from '../../shared/engine/tx-queue.js';
import { FakeTun } from '../../shared/tun/fake-tun.js';
import type { TunDevice } from '../../shared/tun/tun-device.js';
import { shiftVnetHeader } from '../../shared/tun/vnet-header.js';
import { C_TX_BYTES, C_TX_PACKETS, dropIndex, eventIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';

const MAC = Uint8Array.of(0x02, 0, 0x5e, 0, 0x53, 1);
const GSO = 1000;

/** IPv6 + TCP (20 bytes) with `payload` bytes; marker in the TCP source port. */
function tcp6(payload: number, marker: number): Uint8Array {
  const p = new Uint8Array(60 + payload);
  p[0] = 0x60;
  p[4] = (20 + payload) >> 8;
  p[5] = (20 + payload) & 0xff;
  p[6] = 6;
  p[7] = 64;
  p[23] = 1;
  p[39] = 2;
  p[40] = marker >> 8;
  p[41] = marker & 0xff;
  p[52] = 5 << 4;
  return p;
}

/** A TCPv6 GSO header: NEEDS_CSUM, csum_start 40, offset 16. */
function gsoHdr(): Uint8Array {
  return Uint8Array.of(1, 4, 60, 0, GSO & 0xff, GSO >> 8, 40, 0, 16, 0, 0, 0);
}

/** Odd markers go to the TAP with 14 bytes in front (standing in for Ethernet), even ones to the TUN. */
class Split implements PacketProcessor {
  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const marker = (buf[off + 40]! << 8) | buf[off + 41]!;
    if (marker % 2 === 1) {
      shiftVnetHeader(vnet, vnetOff / 12, 14); // offsets count from the frame start, as wrapUdpGso leaves them
      tx.forwardTap(buf, off - 14, len + 14, vnet, vnetOff);
    }
    else tx.forward(buf, off, len, vnet, vnetOff);
    return VERDICT_QUEUED;
  }
}

/** Both devices' writes in one log, in the order they happened. */
function logged(dev: FakeTun, name: string, log: string[]): FakeTun {
  const write = dev.write.bind(dev);
  (dev as TunDevice).write = (buf, offs, lens, count, vnet) => {
    const before = dev.writeDrops;
    const n = write(buf, offs, lens, count, vnet);
    for (let i = 0; i < count; i++) {
      const o = offs[i]! + (name === 'tap' ? 14 : 0);
      log.push(`${name}:${(buf[o + 40]! << 8) | buf[o + 41]!}`);
    }
    if (dev.writeDrops !== before) log.push(`${name}:refused`);
    return n;
  };
  return dev;
}

describe('batch loop with a tunnel TAP', () => {
  function run(failTapWrites: number): { log: string[]; c: Float64Array; tap: FakeTun; tun: FakeTun } {
    const log: string[] = [];
    const tun = logged(new FakeTun({ batchSize: 16, vnetHdr: true, queueLimit: 100 }), 'tun', log);
    const tap = logged(new FakeTun({ batchSize: 1, vnetHdr: true }), 'tap', log);
    tap.failWrites = failTapWrites;
    const c = newCounterBlock();
    const loop = new BatchLoop(tun, new Split(), c, (e) => {
      throw e;
    }, { tap: { dev: tap, mac: MAC }, gro: false });
    expect(loop.tx.tapMac).toBe(MAC);
    // 1: 3 segments to the TAP, 2: plain to the TUN, 3: 2 segments to the TAP, 4: plain to the TUN
    tun.inject(tcp6(3 * GSO, 1), gsoHdr());
    tun.inject(tcp6(100, 2));
    tun.inject(tcp6(2 * GSO, 3), gsoHdr());
    tun.inject(tcp6(100, 4));
    loop.drain();
    return { log, c, tap, tun };
  }

  it('writes in queue order across TUN and TAP, counting wire segments without the Ethernet header', () => {
    const { log, c, tap, tun } = run(0);
    expect(log).toEqual(['tap:1', 'tun:2', 'tap:3', 'tun:4']);
    expect(tap.takeWritten().map((w) => w.data.length)).toEqual([14 + 60 + 3 * GSO, 14 + 60 + 2 * GSO]);
    expect(tun.takeWritten()).toHaveLength(2);
    expect(c[C_TX_PACKETS]).toBe(3 + 1 + 2 + 1);
    // every segment carries its 60 header bytes; the Ethernet header is nowhere
    expect(c[C_TX_BYTES]).toBe(3 * (60 + GSO) + 160 + 2 * (60 + GSO) + 160);
    expect(c[eventIndex('tunnel_gso_writes')]).toBe(2);
    expect(c[dropIndex('write_error')]).toBe(0);
  });

  it('a refused TAP frame loses all its segments (write_error), the rest still goes out in order', () => {
    const { log, c, tap } = run(1);
    expect(log).toEqual(['tap:1', 'tap:refused', 'tun:2', 'tap:3', 'tun:4']);
    expect(tap.takeWritten()).toHaveLength(1);
    expect(c[dropIndex('write_error')]).toBe(3);
    expect(c[C_TX_PACKETS]).toBe(1 + 2 + 1);
    expect(c[eventIndex('tunnel_gso_writes')]).toBe(1);
  });
});
