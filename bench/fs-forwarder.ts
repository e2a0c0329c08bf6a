// Reference forwarder for `npm run bench`: what a Node program gets from the TUN fd with plain
// fs.read/fs.write (one libuv thread-pool round trip per packet, as the fs-stream TUN wrappers do),
// with the same S -> B rewrite as the front (our codec, so only the I/O differs).
//   node dist/bench/fs-forwarder.js NAME S6 B6 S4 B4
// The TUN is opened by the addon without O_NONBLOCK (fs.read on it blocks a pool thread until a
// packet arrives). Prints "ready NAME". Runs until killed.
import { read, write } from 'node:fs';
import { openTunQueues } from '../shared/tun/native-tun.js';
import { PacketInfo } from '../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../shared/packet/parse.js';
import { rewriteDst } from '../shared/packet/translate.js';
import { addrDelta } from '../shared/packet/checksum.js';
import { parseAddress } from '../shared/table/addr.js';

const [name, s6t, b6t, s4t, b4t] = process.argv.slice(2);
const words = (t: string | undefined): Uint32Array => {
  const a = t ? parseAddress(t) : null;
  if (!a) throw new Error(`usage: fs-forwarder NAME S6 B6 S4 B4 (bad address ${t})`);
  return Uint32Array.from(a.words);
};
const s6 = words(s6t);
const b6 = words(b6t);
const s4 = words(s4t);
const b4 = words(b4t);
const d6 = addrDelta(s6, b6, 4);
const d4 = addrDelta(s4, b4, 1);

const set = openTunQueues(name ?? 'fstun0', 1, { vnetHdr: false, blocking: true });
const fd = set.fds[0]!;
const info = new PacketInfo();
// Several buffers so a write in flight never shares memory with the next read.
const RING = 64;
const bufs = Array.from({ length: RING }, () => Buffer.alloc(2048));
let next = 0;

function rewrite(b: Buffer, n: number): void {
  if (parsePacket(b, 0, n, info, -1) !== ParseError.OK) return;
  if (info.version === 6) {
    if (info.dst[0] === s6[0] && info.dst[1] === s6[1] && info.dst[2] === s6[2] && info.dst[3] === s6[3]) rewriteDst(b, 0, info, b6, d6, false);
  } else if (info.dst[0] === s4[0]) {
    rewriteDst(b, 0, info, b4, d4, false);
  }
}

function loop(): void {
  const b = bufs[next]!;
  next = (next + 1) % RING;
  read(fd, b, 0, b.length, null, (err, n) => {
    if (err) {
      if (err.code === 'EAGAIN' || err.code === 'EINTR') return void setImmediate(loop);
      process.stderr.write(`fs-forwarder: read: ${err.message}\n`);
      process.exit(1);
    }
    rewrite(b, n);
    write(fd, b, 0, n, null, () => undefined); // errors (ENOBUFS, EIO) are drops
    loop();
  });
}

process.stdout.write(`ready ${set.name}\n`);
loop();
process.on('SIGTERM', () => process.exit(0));
