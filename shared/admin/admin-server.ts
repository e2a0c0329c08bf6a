// Admin HTTP server on admin.listen: GET /metrics, /healthz, /readyz, /table, plus the role's own
// routes (the front's /lookup, /flows; POST /reload). Main thread only.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';

export interface ListenAddress {
  /** undefined: all addresses (dual-stack "::" when the host has IPv6). */
  host: string | undefined;
  port: number;
}

/** "[::1]:9101", "127.0.0.1:9101", "localhost:9101", ":9101" (all addresses). Throws on anything else. */
export function parseListen(s: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`bad listen address ${JSON.stringify(s)}: expected HOST:PORT, [IPv6]:PORT or :PORT`);
  const host = m[1] ?? (m[2] || undefined);
  return { host, port };
}

export interface Readiness {
  ready: boolean;
  /** Why not ready ("tun down", "no table loaded"); shown in the 503 body. */
  reason?: string;
}

export interface AdminHandlers {
  /** Prometheus text exposition and its content type (ServiceMetrics fits). */
  metrics: { metrics(): Promise<string>; readonly contentType: string };
  /** Ready when the TUN is up and a table is loaded. */
  ready: () => Readiness;
  /** The table in force: { backs, pools, routes, loadedAt, source }; undefined when none is loaded. */
  table: () => unknown;
}

/** A reply of a role route: status and a JSON body. */
export interface AdminReply {
  status: number;
  body: unknown;
}

export interface AdminRoute {
  method: 'GET' | 'POST';
  /** Only loopback peers may call it (it changes state: a reload). */
  loopbackOnly?: boolean;
  handle(query: URLSearchParams): AdminReply | Promise<AdminReply>;
}

/**
 * A peer on this host: 127.0.0.0/8, ::1, IPv4-mapped 127.x, or the listening address itself (a
 * command on the host that connects to the fabric address admin.listen names comes from it; a
 * packet from elsewhere with our own address as source is a martian the kernel drops).
 */
export function isLoopbackPeer(addr: string | undefined, local?: string): boolean {
  if (addr === undefined) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || /^127\./.test(a) || (local !== undefined && addr === local);
}

export interface AdminServerOptions extends AdminHandlers {
  /** Role routes by path ("/lookup"). */
  routes?: Record<string, AdminRoute>;
  listen: string;
  log?: Logger;
  /** Bounds against slow or many clients (defaults: ADMIN_LIMITS). */
  limits?: Partial<AdminLimits>;
}

/**
 * The admin server is for a scraper, a health check and an operator: a few connections, small
 * requests. Node's defaults (no connection cap, 60 s to send headers, 300 s per request) let a
 * handful of slow clients hold it, and with them the service's readiness checks.
 */
export interface AdminLimits {
  /** Open connections at once; more are closed on accept. */
  maxConnections: number;
  /** Time a client has to send the request headers. */
  headersTimeoutMs: number;
  /** Time a client has to send the whole request. */
  requestTimeoutMs: number;
  /** Idle time of a kept-alive connection between requests. */
  keepAliveTimeoutMs: number;
  /** How often the expired header/request timers are checked. */
  checkIntervalMs: number;
}

export const ADMIN_LIMITS: AdminLimits = {
  maxConnections: 32,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5000,
  checkIntervalMs: 1000,
};

const JSON_TYPE = 'application/json; charset=utf-8';

export class AdminServer {
  private readonly server: Server;
  private readonly addr: ListenAddress;

  constructor(private readonly opts: AdminServerOptions) {
    this.addr = parseListen(opts.listen);
    const lim = { ...ADMIN_LIMITS, ...opts.limits };
    this.server = createServer(
      {
        headersTimeout: lim.headersTimeoutMs,
        requestTimeout: lim.requestTimeoutMs,
        connectionsCheckingInterval: lim.checkIntervalMs,
        maxHeaderSize: 8192,
      },
      (req, res) => {
        this.handle(req, res).catch((e) => this.fail(res, e));
      },
    );
    this.server.maxConnections = lim.maxConnections;
    // Scrapers keep connections alive; a short idle timeout keeps close() quick even without closeAll.
    this.server.keepAliveTimeout = lim.keepAliveTimeoutMs;
    // A connection that sends nothing at all is idle, not slow: the socket timeout closes it.
    this.server.timeout = lim.requestTimeoutMs;
    this.server.on('timeout', (socket: import('node:net').Socket) => socket.destroy());
    this.server.on('drop', () => {
      this.dropped++;
      if (this.dropped === 1 || this.dropped % 1000 === 0) this.opts.log?.warn('admin_connections_full', { maxConnections: lim.maxConnections, dropped: this.dropped });
    });
  }

  /** Connections closed on accept because maxConnections were open. */
  dropped = 0;

  /** Start listening; resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.server.once('error', onError);
      this.server.listen({ host: this.addr.host, port: this.addr.port }, () => {
        this.server.off('error', onError);
        const a = this.server.address() as AddressInfo;
        this.opts.log?.info('admin_listening', { address: a.address, port: a.port });
        resolve(a);
      });
    });
  }

  address(): AddressInfo | null {
    return this.server.address() as AddressInfo | null;
  }

  /** Stop accepting and close every connection, keep-alive ones included. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const q = (req.url ?? '/').indexOf('?');
    const path = q < 0 ? req.url ?? '/' : (req.url ?? '/').slice(0, q);
    const route = this.opts.routes && Object.hasOwn(this.opts.routes, path) ? this.opts.routes[path] : undefined;
    if (route) return this.handleRoute(route, req, res, q < 0 ? '' : (req.url ?? '').slice(q + 1));
    const known = path === '/metrics' || path === '/healthz' || path === '/readyz' || path === '/table';
    if (!known) return this.send(res, 404, JSON_TYPE, JSON.stringify({ error: 'not found', path }));
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return this.send(res, 405, JSON_TYPE, JSON.stringify({ error: 'method not allowed', method }));
    }
    const head = method === 'HEAD';
    switch (path) {
      case '/metrics':
        return this.send(res, 200, this.opts.metrics.contentType, await this.opts.metrics.metrics(), head);
      case '/healthz':
        return this.send(res, 200, JSON_TYPE, '{"status":"ok"}', head);
      case '/readyz': {
        const r = this.opts.ready();
        return r.ready
          ? this.send(res, 200, JSON_TYPE, '{"status":"ready"}', head)
          : this.send(res, 503, JSON_TYPE, JSON.stringify({ status: 'not ready', reason: r.reason ?? 'not ready' }), head);
      }
      case '/table': {
        const t = this.opts.table();
        return t === undefined || t === null
          ? this.send(res, 503, JSON_TYPE, JSON.stringify({ error: 'no table loaded' }), head)
          : this.send(res, 200, JSON_TYPE, JSON.stringify(t), head);
      }
    }
  }

  private async handleRoute(route: AdminRoute, req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    const method = req.method ?? 'GET';
    const head = route.method === 'GET' && method === 'HEAD';
    if (method !== route.method && !head) {
      res.setHeader('Allow', route.method === 'GET' ? 'GET, HEAD' : route.method);
      return this.send(res, 405, JSON_TYPE, JSON.stringify({ error: 'method not allowed', method }));
    }
    if (route.loopbackOnly && !isLoopbackPeer(req.socket.remoteAddress, req.socket.localAddress)) {
      return this.send(res, 403, JSON_TYPE, JSON.stringify({ error: 'only from this host (loopback)' }));
    }
    req.resume(); // a body, if any, is not read: drain it
    const r = await route.handle(new URLSearchParams(query));
    return this.send(res, r.status, JSON_TYPE, JSON.stringify(r.body), head);
  }

  private send(res: ServerResponse, status: number, type: string, body: string, headOnly = false): void {
    res.statusCode = status;
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.setHeader('Cache-Control', 'no-store');
    res.end(headOnly ? undefined : body);
  }

  private fail(res: ServerResponse, e: unknown): void {
    this.opts.log?.error('admin_request_failed', { error: e });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.send(res, 500, JSON_TYPE, JSON.stringify({ error: 'internal error', message: e instanceof Error ? e.message : String(e) }));
  }
}

/** Create and start an admin server. */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const s = new AdminServer(opts);
  await s.listen();
  return s;
}
