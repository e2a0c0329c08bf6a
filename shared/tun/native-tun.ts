// NativeTun: a TunDevice over one queue of a Linux TUN device, through the mslb_tun N-API addon:
// build/Release/mslb_tun.node when it was compiled here (node-gyp), else the prebuilt binary shipped
// in prebuilds/ (npm run prebuild), found by node-gyp-build.
//
// Single queue: NativeTun.open({ name }). Multi-queue: the main thread calls
// openTunQueues(name, n, { vnetHdr }) and posts the fd numbers to one worker per queue; each
// worker calls NativeTun.attach(fd, { vnetHdr }) (fds are process-wide, the poll handle lives on
// the worker's own loop). An fd that is never attached must be given to closeTunFds(): until a
// worker reports that attach() returned, the main thread still owns the fd (a worker that dies
// while loading never took it). After attach, close() frees everything; if JS forgets, the
// wrapper's finalizer (GC) or the worker's env teardown does.
//
// TAP for UDP-tunnel writes: openTunQueues(name, n, { tap: true, vnetHdr: true, vnetHdrSize: 24 })
// opens an IFF_TAP device whose vnet header is struct virtio_net_hdr_v1_hash_tunnel (24 bytes);
// attach with the same vnetHdrSize. JS keeps its 12-byte stride: on write the addon appends zero
// hash fields and the outer transport / inner network offsets computed from the frame, on read it
// drops those 12 bytes. tapHwAddr() gives the MAC frames must be addressed to; tunnelWriteProbe()
// asks the kernel whether it segments such writes.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_USO4,
  TUN_F_USO6,
  TunGoneError,
  VNET_HDR_LEN,
  VNET_TNL_HDR_LEN,
  allocRx,
  slabGeometry,
  type TunDevice,
  type TunQueueOptions,
  type TunRx,
} from './tun-device.js';

/** What the addon exports (shared/tun/native/tun_addon.c). */
interface NativeQueue {
  read(): number;
  write(buf: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, vnet: Uint8Array | null): number;
  poll(onReadable: () => void, onError?: (err: Error) => void): void;
  close(): void;
  writeDrops(): number;
  readDrops(): number;
  fd(): number;
}
interface Addon {
  openQueues(name: string, n: number, flags: number): { name: string; fds: number[] };
  ifName(fd: number): string;
  hwAddr(fd: number): Uint8Array;
  writeTunnelProbe(fd: number, mac: Uint8Array): number;
  setVnetHdrSize(fd: number, size: number): boolean;
  setOffload(fd: number, mask: number): boolean;
  closeFd(fd: number): void;
  attach(
    fd: number,
    vnet: number,
    batch: number,
    slot: number,
    headroom: number,
    buf: Uint8Array,
    offs: Int32Array,
    lens: Int32Array,
    vnetArea: Uint8Array | null,
  ): NativeQueue;
}

const OPEN_MULTI_QUEUE = 1;
const OPEN_VNET_HDR = 2;
const OPEN_BLOCKING = 4;
const OPEN_TAP = 8;
const OPEN_VNET_TNL = 16;

let addon: Addon | undefined;

/**
 * The addon above this module (works from shared/tun and dist/shared/tun): a local compile
 * (build/Release) first, so an edited C source is what runs; then the prebuilt binary for this
 * platform, which node-gyp-build picks from prebuilds/ by platform, architecture and libc.
 */
function addonPath(): string {
  const override = process.env.MSLB_TUN_ADDON;
  if (override) return override;
  let dir = dirname(fileURLToPath(import.meta.url));
  let pkgRoot: string | undefined;
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'build', 'Release', 'mslb_tun.node');
    if (existsSync(p)) return p;
    if (!pkgRoot && existsSync(join(dir, 'prebuilds'))) pkgRoot = dir;
    dir = dirname(dir);
  }
  if (pkgRoot) {
    const gypBuild = createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string };
    try {
      return gypBuild.path(pkgRoot);
    } catch {
      /* no prebuild for this platform: the message below says how to compile one */
    }
  }
  throw new Error('mslb_tun.node not found (no local build, no prebuild for this platform): run `npm run build:native` (node-gyp rebuild)');
}

/** The addon module (cold path: loaded once per thread). gso.ts reads its GSO functions from it. */
export function loadAddon(): Addon {
  if (!addon) addon = createRequire(import.meta.url)(addonPath()) as Addon;
  return addon;
}

export interface TunQueueSet {
  /** Kernel interface name (may differ from the request if it held a %d pattern). */
  name: string;
  fds: number[];
  vnetHdr: boolean;
  /** TUN_F_* offloads accepted (0 without vnetHdr). */
  offloads: number;
}

export interface OpenQueuesOptions {
  vnetHdr?: boolean;
  /** Exact TUN_F_* mask to require; default probes CSUM|TSO4|TSO6, then adds USO4|USO6. */
  offloads?: number;
  /** Leave the fds blocking (for references that read them with fs.read; never with NativeTun). */
  blocking?: boolean;
  /** IFF_TAP: the device exchanges Ethernet frames (the UDP-tunnel write path needs one). */
  tap?: boolean;
  /** Device vnet header size with vnetHdr: 12 (default) or VNET_TNL_HDR_LEN (24, UDP-tunnel GSO). */
  vnetHdrSize?: number;
}

/**
 * Probe offloads on a vnet-hdr fd: the base set wireguard-go requires, then UDP segmentation
 * offload (Linux >= 6.2) on top; a refusal means "unsupported", not an error. Returns the mask set.
 */
export function probeOffloads(fd: number): number {
  const a = loadAddon();
  const base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (!a.setOffload(fd, base)) {
    a.setOffload(fd, 0);
    return 0;
  }
  const withUso = base | TUN_F_USO4 | TUN_F_USO6;
  return a.setOffload(fd, withUso) ? withUso : base;
}

/** TUNSETVNETHDRSZ on a queue fd (the size is the device's, for every queue); false when refused. */
export function setVnetHdrSize(fd: number, size: number): boolean {
  return loadAddon().setVnetHdrSize(fd, size);
}

/** TUNSETOFFLOAD with an exact mask; false when the kernel refuses it. */
export function setOffload(fd: number, mask: number): boolean {
  return loadAddon().setOffload(fd, mask);
}

/** Open n queues of one TUN device (IFF_MULTI_QUEUE when n > 1). Main thread; cold path. */
export function openTunQueues(name: string, n: number, o: OpenQueuesOptions = {}): TunQueueSet {
  const a = loadAddon();
  const vnetHdr = o.vnetHdr ?? false;
  const tnl = vnetHdr && o.vnetHdrSize === VNET_TNL_HDR_LEN;
  if (o.vnetHdrSize !== undefined && o.vnetHdrSize !== VNET_HDR_LEN && o.vnetHdrSize !== VNET_TNL_HDR_LEN) throw new RangeError(`vnetHdrSize ${o.vnetHdrSize}: 12 or 24`);
  const flags =
    (n > 1 ? OPEN_MULTI_QUEUE : 0) | (vnetHdr ? OPEN_VNET_HDR : 0) | (o.blocking ? OPEN_BLOCKING : 0) | (o.tap ? OPEN_TAP : 0) | (tnl ? OPEN_VNET_TNL : 0);
  const r = a.openQueues(name, n, flags);
  let offloads = 0;
  if (vnetHdr) {
    if (o.offloads !== undefined) {
      if (!a.setOffload(r.fds[0], o.offloads)) {
        for (const fd of r.fds) a.closeFd(fd);
        throw new Error(`TUNSETOFFLOAD 0x${o.offloads.toString(16)} refused on ${r.name}`);
      }
      offloads = o.offloads;
    } else {
      offloads = probeOffloads(r.fds[0]);
    }
  }
  return { name: r.name, fds: r.fds, vnetHdr, offloads };
}

/** A TAP's own MAC address (SIOCGIFHWADDR on one of its queue fds): frames to it are "received". */
export function tapHwAddr(fd: number): Uint8Array {
  return loadAddon().hwAddr(fd);
}

/**
 * Start-up probe on a TAP queue fd opened with a 24-byte vnet header and TUN_F_UDP_TUNNEL_GSO set,
 * device up: writes a 2-segment TCPv6-in-UDPv6 super-packet (::1 -> ::1, dropped by the kernel
 * after the write) addressed to `mac`. 0 when the kernel accepted it, else the errno.
 */
export function tunnelWriteProbe(fd: number, mac: Uint8Array): number {
  return loadAddon().writeTunnelProbe(fd, mac);
}

/** Close fds from openTunQueues that no NativeTun took over. */
export function closeTunFds(fds: readonly number[]): void {
  const a = loadAddon();
  for (const fd of fds) a.closeFd(fd);
}

export interface OpenTunOptions extends TunQueueOptions, OpenQueuesOptions {
  /** Interface name (< 16 bytes); "" or a pattern like "mslb%d" lets the kernel choose. */
  name: string;
}

function rethrowOnError(err: Error): void {
  throw err;
}

export class NativeTun implements TunDevice {
  readonly name: string;
  readonly batchSize: number;
  readonly headroom: number;
  readonly slotSize: number;
  readonly vnetHdr: boolean;
  readonly offloads: number;
  /** The device's vnet header size (0 without vnetHdr); JS always sees 12 bytes per packet. */
  readonly vnetHdrSize: number;
  readonly rx: TunRx;
  private q: NativeQueue | null;

  private constructor(fd: number, o: TunQueueOptions, name: string) {
    const vnetHdr = o.vnetHdr ?? false;
    const g = slabGeometry(vnetHdr, o);
    this.name = name;
    this.batchSize = g.batchSize;
    this.headroom = g.headroom;
    this.slotSize = g.slotSize;
    this.vnetHdr = vnetHdr;
    this.offloads = o.offloads ?? 0;
    this.vnetHdrSize = vnetHdr ? (o.vnetHdrSize === VNET_TNL_HDR_LEN ? VNET_TNL_HDR_LEN : VNET_HDR_LEN) : 0;
    this.rx = allocRx(g, vnetHdr);
    const r = this.rx;
    this.q = loadAddon().attach(fd, this.vnetHdrSize, g.batchSize, g.slotSize, g.headroom, r.buf, r.offs, r.lens, vnetHdr ? r.vnet : null);
  }

  /** Open a single-queue device (creates it unless a persistent one of that name exists). */
  static open(o: OpenTunOptions): NativeTun {
    const set = openTunQueues(o.name, 1, o);
    try {
      return new NativeTun(set.fds[0], { ...o, vnetHdr: set.vnetHdr, offloads: set.offloads, vnetHdrSize: o.vnetHdrSize }, set.name);
    } catch (e) {
      closeTunFds(set.fds);
      throw e;
    }
  }

  /** Take over an fd from openTunQueues (typically in a worker thread). The queue owns it now. */
  static attach(fd: number, o: TunQueueOptions = {}): NativeTun {
    const name = loadAddon().ifName(fd);
    return new NativeTun(fd, o, name);
  }

  /** The queue's fd, -1 after close. */
  get fd(): number {
    return this.q ? this.q.fd() : -1;
  }

  read(): number {
    const q = this.q;
    if (q === null) return 0;
    const n = q.read();
    if (n < 0) throw new TunGoneError(-n, 'read');
    return n;
  }

  write(buf: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, vnet?: Uint8Array): number {
    const q = this.q;
    if (q === null) throw new Error(`write on closed TUN queue ${this.name}`);
    if (this.vnetHdr && vnet === undefined) throw new TypeError('vnetHdr queue: write needs the vnet header area');
    const n = q.write(buf, offs, lens, count, vnet ?? null);
    if (n < 0) throw new TunGoneError(-n, 'write');
    return n;
  }

  onReadable(cb: () => void, onError?: (err: Error) => void): void {
    if (this.q === null) throw new Error(`onReadable on closed TUN queue ${this.name}`);
    // Without a handler a vanished device must not go unnoticed: it becomes an uncaught error.
    this.q.poll(cb, onError ?? rethrowOnError);
  }

  get writeDrops(): number {
    return this.q ? this.q.writeDrops() : this.finalWriteDrops;
  }

  get readDrops(): number {
    return this.q ? this.q.readDrops() : this.finalReadDrops;
  }

  private finalWriteDrops = 0;
  private finalReadDrops = 0;

  close(): void {
    const q = this.q;
    if (q === null) return;
    this.finalWriteDrops = q.writeDrops();
    this.finalReadDrops = q.readDrops();
    this.q = null;
    q.close();
  }
}
