// A lab server process (one per server namespace): HTTP, HTTPS and a UDP echo, each bound to every
// given service address explicitly (a UDP server bound to :: would answer from its link address and
// the client's connected socket would drop the reply), each answering with the server's name.
// GET /big?bytes=N serves N bytes; POST/PUT answers with the body length and SHA-256 (uploads).
// Usage: node dist/lab/lab-server.js --name server1 --addr 2001:db8:5::80 --addr 192.0.2.80
//        --cert cert.pem --key key.pem [--http 80] [--https 443] [--udp 7]
// Prints "ready" on stdout once every socket listens.
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    addr: { type: 'string', multiple: true },
    cert: { type: 'string' },
    key: { type: 'string' },
    http: { type: 'string', default: '80' },
    https: { type: 'string', default: '443' },
    udp: { type: 'string', default: '7' },
  },
});
const name = values.name;
const addrs = values.addr ?? [];
if (!name || addrs.length === 0 || !values.cert || !values.key) {
  process.stderr.write('usage: lab-server --name N --addr A [--addr A] --cert F --key F\n');
  process.exit(2);
}
const tls = { cert: readFileSync(values.cert), key: readFileSync(values.key) };

const BIG_MAX = 1 << 30;
const CHUNK = Buffer.alloc(1 << 16, 'mslb-lab-big-body.');

/** GET /big?bytes=N (default 8 MiB): N bytes of filler, for downloads. */
function big(req: IncomingMessage, res: ServerResponse): void {
  const n = Math.min(BIG_MAX, Math.max(0, Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes') ?? 8 << 20) | 0));
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  let left = n;
  const more = (): void => {
    while (left > 0) {
      const k = Math.min(left, CHUNK.length);
      left -= k;
      if (!res.write(k === CHUNK.length ? CHUNK : CHUNK.subarray(0, k))) return void res.once('drain', more);
    }
    res.end();
  };
  more();
}

/** POST/PUT (uploads): the answer adds the body's length and SHA-256, so a test can check integrity. */
function upload(req: IncomingMessage, res: ServerResponse): void {
  const h = createHash('sha256');
  let bytes = 0;
  req.on('data', (d: Buffer) => {
    bytes += d.length;
    h.update(d);
  });
  req.on('end', () => {
    const body = `${name}\n${req.socket.remoteAddress ?? ''}\n${req.socket.localAddress ?? ''}\n${bytes} ${h.digest('hex')}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'POST' || req.method === 'PUT') return upload(req, res);
  if (req.url?.startsWith('/big')) return big(req, res);
  // Body is the server name plus what the server saw, so tests can check source = client.
  const body = `${name}\n${req.socket.remoteAddress ?? ''}\n${req.socket.localAddress ?? ''}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const pending: Promise<void>[] = [];
for (const addr of addrs) {
  const http = createHttp(answer);
  const https = createHttps(tls, answer);
  pending.push(new Promise((r, j) => http.once('error', j).listen(Number(values.http), addr, () => r())));
  pending.push(new Promise((r, j) => https.once('error', j).listen(Number(values.https), addr, () => r())));
  const udp = createSocket({ type: addr.includes(':') ? 'udp6' : 'udp4' });
  udp.on('message', (msg, rinfo) => {
    udp.send(`${name}\n${rinfo.address}\n${msg.length}\n`, rinfo.port, rinfo.address);
  });
  pending.push(new Promise((r, j) => udp.once('error', j).bind(Number(values.udp), addr, () => r())));
}
Promise.all(pending).then(
  () => process.stdout.write('ready\n'),
  (e: unknown) => {
    process.stderr.write(`lab-server ${name}: ${String(e)}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
