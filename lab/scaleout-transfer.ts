// Long TCP transfers for the scale-out lab: a paced server that names itself, and a client that
// opens many connections at once and reports, per connection, which server answered and whether the
// whole transfer arrived (completed) or not (broken: reset, early close, short, timed out).
//   server: node dist/lab/scaleout-transfer.js server --name server1 --addr S6 --addr S4 --port 8080
//           --bytes N --duration-ms D        (prints "ready"; each connection: "NAME\n" then N bytes over ~D ms)
//   client: node dist/lab/scaleout-transfer.js client --port 8080 --bytes N --timeout-ms T
//           --conn SRC,DST [--conn SRC,DST ...]
//           prints "established K" once every connection got its server's name line, then one JSON line
//           {"results":[{src,dst,localPort,server,bytes,ok,error,ms}]} when all are done.
import { connect, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const CHUNK = 16 * 1024;
const TICK_MS = 20;

export interface TransferResult {
  src: string;
  dst: string;
  localPort: number;
  server: string;
  /** Payload bytes received after the name line. */
  bytes: number;
  ok: boolean;
  error: string;
  ms: number;
}

function serve(name: string, addrs: string[], port: number, bytes: number, durationMs: number): void {
  const ticks = Math.max(1, Math.ceil(durationMs / TICK_MS));
  const perTick = Math.max(1, Math.ceil(bytes / ticks));
  const chunk = Buffer.alloc(CHUNK, 0x61);
  const onConn = (s: Socket): void => {
    s.setNoDelay(true);
    s.on('error', () => s.destroy());
    s.write(`${name}\n`);
    let left = bytes;
    const timer = setInterval(() => {
      // Pace: perTick bytes per tick, but never queue more than a tick's worth in user space.
      if (s.destroyed) return clearInterval(timer);
      if (s.writableLength > perTick) return;
      let n = Math.min(perTick, left);
      while (n > 0) {
        const k = Math.min(n, CHUNK);
        s.write(k === CHUNK ? chunk : chunk.subarray(0, k));
        n -= k;
        left -= k;
      }
      if (left <= 0) {
        clearInterval(timer);
        s.end();
      }
    }, TICK_MS);
    s.on('close', () => clearInterval(timer));
  };
  let listening = 0;
  for (const a of addrs) {
    const srv = createServer(onConn);
    srv.on('error', (e) => {
      process.stderr.write(`transfer server ${name} ${a}: ${e.message}\n`);
      process.exit(1);
    });
    srv.listen(port, a, () => {
      if (++listening === addrs.length) process.stdout.write('ready\n');
    });
  }
  process.on('SIGTERM', () => process.exit(0));
}

function run(conns: { src: string; dst: string }[], port: number, bytes: number, timeoutMs: number): void {
  const results: TransferResult[] = [];
  let established = 0;
  let done = 0;
  const t0 = Date.now();
  const finish = (): void => {
    process.stdout.write(`${JSON.stringify({ results })}\n`);
    process.exit(0);
  };
  for (const c of conns) {
    const r: TransferResult = { src: c.src, dst: c.dst, localPort: 0, server: '', bytes: 0, ok: false, error: '', ms: 0 };
    results.push(r);
    let head = '';
    let closed = false;
    const s = connect({ host: c.dst, port, localAddress: c.src });
    const end = (error: string): void => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      r.ms = Date.now() - t0;
      r.ok = !error && r.bytes === bytes && r.server !== '';
      r.error = error || (r.ok ? '' : `short: ${r.bytes} of ${bytes} bytes`);
      s.destroy();
      if (++done === conns.length) finish();
    };
    const timer = setTimeout(() => end(`timeout after ${timeoutMs} ms`), timeoutMs);
    s.on('connect', () => {
      r.localPort = s.localPort ?? 0;
    });
    s.on('data', (d: Buffer) => {
      if (!r.server) {
        head += d.toString('latin1');
        const i = head.indexOf('\n');
        if (i < 0) return;
        r.server = head.slice(0, i);
        r.bytes += head.length - i - 1;
        if (++established === conns.length) process.stdout.write(`established ${established}\n`);
        return;
      }
      r.bytes += d.length;
    });
    s.on('end', () => end(''));
    s.on('error', (e) => end(e.message));
    s.on('close', () => end(''));
  }
}

function main(): void {
  const [mode, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: 'string' },
      addr: { type: 'string', multiple: true },
      port: { type: 'string', default: '8080' },
      bytes: { type: 'string', default: '1048576' },
      'duration-ms': { type: 'string', default: '5000' },
      'timeout-ms': { type: 'string', default: '30000' },
      conn: { type: 'string', multiple: true },
    },
  });
  const port = Number(values.port);
  const bytes = Number(values.bytes);
  if (mode === 'server' && values.name && values.addr?.length) {
    serve(values.name, values.addr, port, bytes, Number(values['duration-ms']));
  } else if (mode === 'client' && values.conn?.length) {
    const conns = values.conn.map((s) => {
      const [src, dst] = s.split(',');
      return { src: src!, dst: dst! };
    });
    run(conns, port, bytes, Number(values['timeout-ms']));
  } else {
    process.stderr.write('usage: scaleout-transfer server --name N --addr A [--addr A] | client --conn SRC,DST [--conn ...]\n');
    process.exit(2);
  }
}

main();
