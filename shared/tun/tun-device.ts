// The seam between the kernel's TUN queue and the engine: a batched, slab-based device modelled on
// wireguard-go's tun.Device, narrowed to what a per-queue worker needs.
//
// Receive: `read()` fills `rx` and returns the packet count (0 = nothing ready). Packet i lives at
//   rx.buf[rx.offs[i] .. rx.offs[i] + rx.lens[i]); slot i starts at i * slotSize and the packet at
//   slot start + headroom, so an outer header (<= headroom bytes) can be prepended in place by
//   writing before rx.offs[i] and moving the offset down. With vnetHdr, packet i's 12-byte
//   virtio_net_hdr is at rx.vnet[i * 12 ..] (see vnet-header.ts), never inside the slab.
// Transmit: `write(buf, offs, lens, count, vnet?)` writes packets buf[offs[i] .. +lens[i]) for
//   i < count (usually buf = rx.buf with the caller's own offs/lens arrays). With vnetHdr, `vnet`
//   holds one 12-byte header per packet index (rx.vnet can be passed straight back). Per-packet
//   kernel refusals (EAGAIN, ENOBUFS, EIO, EINVAL) drop that packet and count `writeDrops`; the
//   return value is the number written. A vanished device throws TunGoneError.
// Readiness: `onReadable(cb, onError)` calls cb once per readiness event (level-triggered: if the
//   callback leaves packets queued, it fires again on the next loop turn). The callback reads
//   batches until read() returns 0 or its own budget runs out. onError gets poll errors (device
//   deleted) once, after which polling has stopped.
// The rx arrays are allocated once per device and reused on every read: copy what must outlive
// the next read().

/** Bytes before each packet in its slot: room for an IPv6 outer header plus options. */
export const HEADROOM = 128;
/** Size of the virtio_net_hdr the device exchanges when vnetHdr is on (TUNSETVNETHDRSZ). */
export const VNET_HDR_LEN = 12;
/** Default packets per read() call. */
export const DEFAULT_BATCH = 64;
/** Default slot without vnet headers: headroom + a 1920-byte packet (MTU up to 1920). */
export const DEFAULT_SLOT = 2048;

/** TUNSETOFFLOAD flags (linux/if_tun.h); USO needs Linux >= 6.2. */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;
/** UDP-tunnel segmentation (Linux >= 6.16): GSO super-packets of TCP inside UDP; needs a 24-byte vnet header. */
export const TUN_F_UDP_TUNNEL_GSO = 0x80;
/** ... with the outer UDP checksum filled per segment by the kernel. */
export const TUN_F_UDP_TUNNEL_GSO_CSUM = 0x100;
/**
 * Device-side vnet header size for UDP-tunnel GSO (struct virtio_net_hdr_v1_hash_tunnel). JS keeps
 * 12 bytes per packet either way: the addon fills the 8 hash bytes with zeros and the tunnel offsets
 * from the packet on write, and drops them on read.
 */
export const VNET_TNL_HDR_LEN = 24;

export interface TunRx {
  /** The slab: batchSize slots of slotSize bytes. */
  readonly buf: Uint8Array;
  /** Start of packet i in buf (i * slotSize + headroom after a read). */
  readonly offs: Int32Array;
  /** Length of packet i. */
  readonly lens: Int32Array;
  /** batchSize x VNET_HDR_LEN bytes; empty when vnetHdr is off. */
  readonly vnet: Uint8Array;
}

export interface TunDevice {
  /** Kernel interface name. */
  readonly name: string;
  readonly batchSize: number;
  readonly headroom: number;
  readonly slotSize: number;
  readonly vnetHdr: boolean;
  /** TUN_F_* offloads the kernel accepted (0 without vnetHdr). */
  readonly offloads: number;
  readonly rx: TunRx;
  /** Fill rx; returns the number of packets, 0 when none are ready. */
  read(): number;
  /** Write packets i < count; returns how many the kernel took. */
  write(buf: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, vnet?: Uint8Array): number;
  /** One cb per readiness event; replaces an earlier registration. */
  onReadable(cb: () => void, onError?: (err: Error) => void): void;
  /** Packets the kernel refused on write (dropped, counted). */
  readonly writeDrops: number;
  /** Packets lost on read (longer than a slot). */
  readonly readDrops: number;
  /** Stop polling and release the queue; idempotent. */
  close(): void;
}

/** How a queue is opened / attached and what a worker needs to know about it. */
export interface TunQueueOptions {
  batchSize?: number;
  headroom?: number;
  slotSize?: number;
  /** IFF_VNET_HDR: a virtio header per packet (offloads). */
  vnetHdr?: boolean;
  /** TUN_F_* offloads in force after the start-up probes (write-side GRO uses TSO/USO). */
  offloads?: number;
  /** The vnet header size the device was opened with (TUNSETVNETHDRSZ): 12 (default) or 24. */
  vnetHdrSize?: number;
}

/** The device vanished under the queue (EBADFD/ENODEV/EBADF): the worker should stop. */
export class TunGoneError extends Error {
  constructor(
    readonly errno: number,
    what: string,
  ) {
    super(`TUN device gone during ${what} (errno ${errno})`);
    this.name = 'TunGoneError';
  }
}

/** Resolved geometry of a queue's slab, shared by NativeTun and FakeTun. */
export interface SlabGeometry {
  batchSize: number;
  headroom: number;
  slotSize: number;
}

export function slabGeometry(vnetHdr: boolean, o: TunQueueOptions = {}): SlabGeometry {
  const batchSize = o.batchSize ?? DEFAULT_BATCH;
  const headroom = o.headroom ?? HEADROOM;
  const slotSize = o.slotSize ?? (vnetHdr ? headroom + 65536 : Math.max(DEFAULT_SLOT, headroom + 1920));
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 4096) throw new RangeError(`batchSize ${batchSize}: 1..4096`);
  if (!Number.isInteger(headroom) || headroom < 0) throw new RangeError(`headroom ${headroom}: >= 0`);
  if (!Number.isInteger(slotSize) || slotSize <= headroom + 68) throw new RangeError(`slotSize ${slotSize}: must exceed headroom + 68`);
  if (batchSize * slotSize > 0x7fffffff) throw new RangeError('batchSize x slotSize exceeds 2 GiB');
  return { batchSize, headroom, slotSize };
}

/** Allocate the rx arrays once for a queue. */
export function allocRx(g: SlabGeometry, vnetHdr: boolean): TunRx {
  return {
    buf: new Uint8Array(g.batchSize * g.slotSize),
    offs: new Int32Array(g.batchSize),
    lens: new Int32Array(g.batchSize),
    vnet: new Uint8Array(vnetHdr ? g.batchSize * VNET_HDR_LEN : 0),
  };
}
