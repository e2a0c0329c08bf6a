// Echo-forwarder benchmark: 64-byte UDP blasted into a TUN device, echoed back by the forwarder.
// Prints packets per read batch (mean/max) and packets per second. Not a test: no assertions.
//   node dist/bench/echo-bench.js [--seconds 3] [--batch 64] [--senders 1] [--vnet]
// Root only. Builds its own namespace (deleted at the end); the TUN side runs in a child process
// inside it (`--child`), the sender is python3 in the same namespace. Bounded by --seconds (<= 30).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EchoForwarder } from '../shared/tun/echo-forwarder.js';
import { NativeTun } from '../shared/tun/native-tun.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const seconds = Math.min(30, Math.max(1, arg('seconds', 3)));
const batch = arg('batch', 64);
const senders = Math.min(4, Math.max(1, arg('senders', 1)));
const vnet = process.argv.includes('--vnet');

function out(o: object): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

/** Child: owns the TUN queue; "start" zeroes the window, "stop" reports it. */
function runChild(): void {
  const dev = NativeTun.open({ name: 'bench0', batchSize: batch, vnetHdr: vnet });
  const fwd = new EchoForwarder(dev, { budget: 16 });
  fwd.start();
  let t0 = 0n;
  let p0 = 0;
  let b0 = 0;
  let e0 = 0;
  let h0 = new Uint32Array(0);
  const timer = setTimeout(() => process.exit(3), (seconds + 30) * 1000);
  timer.unref();
  out({ ready: true, name: dev.name });
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'start') {
      t0 = process.hrtime.bigint();
      p0 = fwd.packets;
      b0 = fwd.batches;
      e0 = fwd.echoed;
      h0 = fwd.hist.slice();
    } else if (l === 'stop') {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const packets = fwd.packets - p0;
      const batches = fwd.batches - b0;
      let maxBatch = 0;
      const hist: Record<number, number> = {};
      for (let k = 1; k < fwd.hist.length; k++) {
        const d = fwd.hist[k] - h0[k];
        if (d > 0) {
          hist[k] = d;
          maxBatch = k;
        }
      }
      out({ secs, packets, echoed: fwd.echoed - e0, batches, maxBatch, hist, writeDrops: dev.writeDrops, readDrops: dev.readDrops });
      dev.close();
      process.exit(0);
    }
  });
}

const BLASTER = `
import socket, sys, time
secs = float(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("203.0.113.1", 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # echoes are not read: keep the buffer small
payload = b"x" * 36  # 20 IP + 8 UDP + 36 = 64-byte packets
dst = ("192.0.2.9", 7)
n = 0
end = time.time() + secs
while True:
    for _ in range(256):
        try:
            s.sendto(payload, dst)
            n += 1
        except OSError:
            pass
    if time.time() >= end:
        break
print(n, flush=True)
`;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}

function waitLine(p: ChildProcess, pred: (l: string) => boolean, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: p.stdout! });
    const t = setTimeout(() => {
      rl.close();
      reject(new Error(`timeout after ${ms} ms`));
    }, ms);
    rl.on('line', (l) => {
      if (pred(l)) {
        clearTimeout(t);
        rl.close();
        resolve(l);
      }
    });
  });
}

async function runParent(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('echo-bench needs root (network namespace + TUN)');
    process.exit(2);
  }
  const ns = `mslb-bench-${randomBytes(3).toString('hex')}`;
  const procs: ChildProcess[] = [];
  sh('ip', ['netns', 'add', ns]);
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const self = fileURLToPath(import.meta.url);
    const args = [self, '--child', '--seconds', String(seconds), '--batch', String(batch), ...(vnet ? ['--vnet'] : [])];
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    procs.push(child);
    const ready = JSON.parse(await waitLine(child, (l) => l.includes('"ready"'), 10_000)) as { name: string };
    for (const line of [
      `link set ${ready.name} up`,
      `link set ${ready.name} txqueuelen 1000`,
      `addr add 203.0.113.1/32 dev ${ready.name}`,
      `route add 192.0.2.0/24 dev ${ready.name}`,
    ]) {
      sh('ip', ['-n', ns, ...line.split(' ')]);
    }
    const statsP = waitLine(child, (l) => l.includes('"packets"'), (seconds + 20) * 1000);
    child.stdin!.write('start\n');
    const blasters = Array.from({ length: senders }, () => {
      const b = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', BLASTER, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
      procs.push(b);
      return waitLine(b, (l) => /^\d+$/.test(l), (seconds + 10) * 1000);
    });
    const sent = (await Promise.all(blasters)).reduce((a, l) => a + Number(l), 0);
    child.stdin!.write('stop\n');
    const s = JSON.parse(await statsP) as {
      secs: number;
      packets: number;
      echoed: number;
      batches: number;
      maxBatch: number;
      hist: Record<string, number>;
      writeDrops: number;
    };
    const top = Object.entries(s.hist)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([k, v]) => `${k}:${v}`)
      .join(' ');
    console.log(`echo-bench: 64-byte UDP, ${senders} sender(s), batch ${batch}${vnet ? ', vnet hdr' : ''}, ${s.secs.toFixed(2)} s`);
    console.log(`  sent ${sent} (${(sent / s.secs / 1e3).toFixed(1)} kpps offered), forwarder read ${s.packets}, echoed ${s.echoed}, write drops ${s.writeDrops}`);
    console.log(`  forwarder: ${(s.packets / s.secs / 1e3).toFixed(1)} kpps; ${s.batches} reads, packets per read mean ${(s.packets / Math.max(1, s.batches)).toFixed(2)} max ${s.maxBatch}`);
    console.log(`  most common batch sizes (size:reads): ${top}`);
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    try {
      for (const pid of sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    } catch {
      /* namespace gone */
    }
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      /* gone */
    }
  }
}

if (process.argv.includes('--child')) runChild();
else await runParent();
