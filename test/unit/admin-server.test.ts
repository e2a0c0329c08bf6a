import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_LIMITS, AdminServer, parseListen, startAdminServer, type Readiness } from '../../shared/admin/admin-server.js';
import { newCounterBlock, C_RX_PACKETS } from '../../shared/metrics/counter-layout.js';
import { ServiceMetrics } from '../../shared/metrics/registry.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(port: number, path: string, method = 'GET', agent?: Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('parseListen', () => {
  it('accepts the config forms', () => {
    expect(parseListen('[::1]:9101')).toEqual({ host: '::1', port: 9101 });
    expect(parseListen('127.0.0.1:9101')).toEqual({ host: '127.0.0.1', port: 9101 });
    expect(parseListen(':9101')).toEqual({ host: undefined, port: 9101 });
    expect(parseListen('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(parseListen('[2001:db8::1]:80')).toEqual({ host: '2001:db8::1', port: 80 });
  });
  it('refuses the rest', () => {
    for (const s of ['9101', '::1:9101', '127.0.0.1:70000', '127.0.0.1:', '[::1]', 'a b:1', '']) {
      expect(() => parseListen(s), s).toThrow(/listen address/);
    }
  });
});

describe('admin server', () => {
  let server: AdminServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function start(state: { ready: Readiness; table: unknown }) {
    const block = newCounterBlock();
    block[C_RX_PACKETS] = 42;
    const metrics = new ServiceMetrics({ role: 'front', sources: { blocks: () => [block] } });
    server = await startAdminServer({
      listen: '127.0.0.1:0',
      metrics,
      ready: () => state.ready,
      table: () => state.table,
    });
    return server.address()!.port;
  }

  it('serves metrics, health, readiness and the table', async () => {
    const state: { ready: Readiness; table: unknown } = { ready: { ready: false, reason: 'no table loaded' }, table: undefined };
    const port = await start(state);

    const m = await call(port, '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.body).toMatch(/^mslb_rx_packets_total 42$/m);

    const h = await call(port, '/healthz');
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toEqual({ status: 'ok' });

    let r = await call(port, '/readyz');
    expect(r.status).toBe(503);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(r.body)).toEqual({ status: 'not ready', reason: 'no table loaded' });
    let t = await call(port, '/table');
    expect(t.status).toBe(503);

    const table = { backs: { b1: { address: '2001:db8:b::1' } }, pools: {}, routes: [{ source: '::/0', to: 'b1' }], loadedAt: '2024-01-01T00:00:00.000Z', source: '/etc/mslb/table.yaml' };
    state.ready = { ready: true };
    state.table = table;
    r = await call(port, '/readyz?verbose=1');
    expect(r.status).toBe(200);
    t = await call(port, '/table');
    expect(t.status).toBe(200);
    expect(JSON.parse(t.body)).toEqual(table);
  });

  it('404 for unknown paths, 405 for non-GET, HEAD without a body, 500 when a callback throws', async () => {
    const state = { ready: { ready: true }, table: {} as unknown };
    const port = await start(state);
    expect((await call(port, '/')).status).toBe(404);
    expect((await call(port, '/metricsx')).status).toBe(404);
    const p = await call(port, '/metrics', 'POST');
    expect(p.status).toBe(405);
    expect(p.headers.allow).toBe('GET, HEAD');
    expect((await call(port, '/table', 'DELETE')).status).toBe(405);
    const head = await call(port, '/healthz', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    state.table = { get backs(): never { throw new Error('table getter broke'); } };
    const bad = await call(port, '/table');
    expect(bad.status).toBe(500);
    expect(JSON.parse(bad.body).message).toBe('table getter broke');
    // The server survives and keeps answering.
    expect((await call(port, '/healthz')).status).toBe(200);
  });

  it('close() ends keep-alive connections at once and frees the port', async () => {
    const port = await start({ ready: { ready: true }, table: {} });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await call(port, '/healthz', 'GET', agent)).status).toBe(200);
      expect((await call(port, '/metrics', 'GET', agent)).status).toBe(200);
      // And one connection in the middle of a request (headers unfinished): not idle, so a plain
      // server.close() would wait for it (headersTimeout, 60 s).
      const raw = connect(port, '127.0.0.1');
      const rawClosed = new Promise<void>((resolve) => raw.on('close', () => resolve()));
      raw.on('error', () => {});
      await new Promise<void>((resolve) => raw.on('connect', () => resolve()));
      raw.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      await server!.close();
      // keepAliveTimeout is 5 s: returning well before means the idle connection was closed.
      expect(Date.now() - t0).toBeLessThan(1000);
      server = undefined;
      await rawClosed;
      await expect(call(port, '/healthz')).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      agent.destroy();
    }
  });

  it('rejects listen() when the port is taken', async () => {
    const port = await start({ ready: { ready: true }, table: {} });
    const metrics = new ServiceMetrics({ role: 'back', sources: { blocks: () => [] }, defaultMetrics: false });
    const other = new AdminServer({ listen: `127.0.0.1:${port}`, metrics, ready: () => ({ ready: true }), table: () => ({}) });
    await expect(other.listen()).rejects.toThrow(/EADDRINUSE/);
    await other.close();
  });
});

describe('admin server bounds: slow and many clients', () => {
  let s: AdminServer | undefined;
  const sockets: import('node:net').Socket[] = [];
  afterEach(async () => {
    for (const k of sockets.splice(0)) k.destroy();
    await s?.close();
    s = undefined;
  });

  async function start(limits: Record<string, number>): Promise<number> {
    const metrics = new ServiceMetrics({ role: 'back', sources: { blocks: () => [] }, defaultMetrics: false });
    s = await startAdminServer({ listen: '127.0.0.1:0', metrics, ready: () => ({ ready: true }), table: () => ({}), limits });
    return s.address()!.port;
  }

  /** Connect; resolves once connected with a promise of the close time (ms after connect) and what was received. */
  function open(port: number, send?: string): Promise<{ closed: Promise<{ ms: number; data: string }> }> {
    return new Promise((resolve, reject) => {
      const k = connect({ host: '127.0.0.1', port });
      sockets.push(k);
      let data = '';
      k.setEncoding('utf8');
      k.on('data', (d: string) => (data += d));
      k.on('error', () => undefined);
      k.once('connect', () => {
        const t0 = Date.now();
        if (send) k.write(send);
        resolve({ closed: new Promise((r) => k.once('close', () => r({ ms: Date.now() - t0, data }))) });
      });
      k.once('error', reject);
    });
  }

  it('the defaults are short and bounded', () => {
    expect(ADMIN_LIMITS.maxConnections).toBeLessThanOrEqual(64);
    expect(ADMIN_LIMITS.headersTimeoutMs).toBeLessThanOrEqual(10_000);
    expect(ADMIN_LIMITS.requestTimeoutMs).toBeLessThanOrEqual(30_000);
  });

  it('connections beyond maxConnections are closed at once; the held ones do not stop a later scrape', async () => {
    const port = await start({ maxConnections: 3 });
    const held = await Promise.all([open(port), open(port), open(port)]);
    await new Promise((r) => setTimeout(r, 100));
    const extra = await open(port);
    const r = await Promise.race([extra.closed, new Promise<null>((res) => setTimeout(() => res(null), 2000))]);
    expect(r, 'the fourth connection was closed').not.toBeNull();
    expect(s!.dropped).toBe(1);
    sockets[0]!.destroy();
    await held[0]!.closed;
    await new Promise((r) => setTimeout(r, 50));
    expect((await call(port, '/healthz')).status).toBe(200);
  });

  it('a client that never finishes its headers is cut off after headersTimeout', async () => {
    const port = await start({ headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 100 });
    const slow = await open(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n'); // and then nothing
    const r = await Promise.race([slow.closed, new Promise<null>((res) => setTimeout(() => res(null), 3000))]);
    expect(r, 'closed by the server').not.toBeNull();
    expect(r!.ms).toBeLessThan(1500);
    expect(r!.data).toMatch(/^HTTP\/1\.1 408/);
  });

  it('a connection that sends nothing is closed after requestTimeout', async () => {
    const port = await start({ headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 100 });
    const idle = await open(port);
    const r = await Promise.race([idle.closed, new Promise<null>((res) => setTimeout(() => res(null), 3000))]);
    expect(r, 'closed by the server').not.toBeNull();
    expect(r!.ms).toBeLessThan(1500);
  });
});
