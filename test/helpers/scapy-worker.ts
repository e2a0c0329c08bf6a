// One long-lived python (with scapy imported once) for tests that ask scapy many small questions:
// each call sends a script defining `run(input)` plus its JSON input on a line and gets the JSON
// result back. Importing scapy costs ~1 s, so one process per test file instead of one per question.
// Every call is bounded (timeoutMs); close() ends the process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const SERVER = `
import json, sys, traceback
from scapy.all import *
_cache = {}
def _sum(b):
    if len(b) % 2: b = b + b'\\0'
    s = 0
    for i in range(0, len(b), 2): s += (b[i] << 8) | b[i+1]
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return s
def csum_ok(b):
    """Every checksum right: IPv4 header; ICMP/ICMPv6/TCP/UDP of unfragmented packets (UDP/IPv4 0 =
    none); recursively into tunnel packets (protocol 4 / 41). Fragments: only the IPv4 header."""
    v = b[0] >> 4
    if v == 4:
        ihl = (b[0] & 15) * 4
        if _sum(b[:ihl]) != 0xffff: return False
        total = (b[2] << 8) | b[3]
        proto, l4 = b[9], b[ihl:total]
        if (((b[6] & 0x3f) << 8) | b[7]) != 0: return True
        ph = b[12:20] + bytes([0, proto]) + len(l4).to_bytes(2, 'big')
    else:
        total = 40 + ((b[4] << 8) | b[5])
        proto, l4 = b[6], b[40:total]
        if proto == 44: return True
        ph = b[8:40] + len(l4).to_bytes(4, 'big') + bytes([0, 0, 0, proto])
    if proto in (4, 41): return csum_ok(l4)
    if proto == 1: return _sum(l4) == 0xffff
    if proto in (6, 58): return _sum(ph + l4) == 0xffff
    if proto == 17:
        if v == 4 and l4[6:8] == b'\\0\\0': return True
        return _sum(ph + l4) == 0xffff
    return True
for line in sys.stdin:
    req = json.loads(line)
    try:
        code = req['script']
        fn = _cache.get(code)
        if fn is None:
            env = dict(globals())
            exec(code, env)
            fn = _cache[code] = env['run']
        out = {'id': req['id'], 'result': fn(req['input'])}
    except Exception:
        out = {'id': req['id'], 'error': traceback.format_exc()}
    sys.stdout.write(json.dumps(out) + '\\n')
    sys.stdout.flush()
`;

export class ScapyWorker {
  private readonly proc: ChildProcess;
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(python = '/usr/bin/python3') {
    this.proc = spawn(python, ['-u', '-c', SERVER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    this.proc.stderr?.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { id: number; result?: unknown; error?: string };
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.error !== undefined) w.reject(new Error(`scapy: ${m.error}`));
      else w.resolve(m.result);
    });
    this.proc.on('exit', (code) => {
      for (const [, w] of this.waiting) {
        clearTimeout(w.timer);
        w.reject(new Error(`scapy worker exited (${code}): ${err}`));
      }
      this.waiting.clear();
    });
  }

  /** Run `script` (python defining run(input)) on `input`; resolves with run's JSON result. */
  run<T>(script: string, input: unknown = null, timeoutMs = 60_000): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`scapy call ${id} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.stdin!.write(JSON.stringify({ id, script, input }) + '\n');
    });
  }

  close(): void {
    this.proc.stdin?.end();
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }
}
