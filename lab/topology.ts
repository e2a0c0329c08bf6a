// The lab's namespaces and links (docs/ARCHITECTURE.md address plan):
//   client --eth-front/eth-client-- front --eth-back1/eth-front-- back1 --eth-server/eth-back-- server1
//                                         --eth-back2/eth-front-- back2 --eth-server/eth-back-- server2
// Plain kernel routing only. The services route S (front) and B (backs) into their TUN themselves, so
// unless `kernelOnly` is set the front has no route to S and the backs none to B.
import { NetnsSet } from './netns.js';
import { buildRouted, type TopologyVariant } from './topology-variants.js';
import {
  BACKS,
  CLIENTS,
  CLIENT_NAMES,
  LINKS,
  LINK_PREFIX_LEN,
  PROBE,
  S4,
  S6,
  type BackName,
  type Family,
} from './address-plan.js';

export type Role = 'client' | 'front' | 'back1' | 'back2' | 'server1' | 'server2' | 'net' | 'front2';
/** Capture points: the link names of the plan. */
export type LinkName = 'client-link' | 'back1-link' | 'back2-link' | 'server1-link' | 'server2-link' | string;

export interface LinkEnd {
  ns: string;
  iface: string;
}
/** `near` is the side toward the client, `far` the side toward the servers. */
export interface Link {
  near: LinkEnd;
  far: LinkEnd;
}

export interface TopologyOptions {
  /** Address families to configure (default both). */
  families?: Family[];
  /** Route S at the front via back1 with plain kernel routes (no services): proves the harness. */
  kernelOnly?: boolean;
  /** 'basic' (default, above) or 'routed': one router with the front on one arm (lab/topology-variants.ts). */
  variant?: TopologyVariant;
}

export class Topology {
  readonly set = new NetnsSet();
  readonly ns = {} as Record<Role, string>;
  readonly links = new Map<LinkName, Link>();
  readonly families: Family[];
  readonly kernelOnly: boolean;

  private constructor(opts: TopologyOptions) {
    this.families = opts.families ?? ['ipv6', 'ipv4'];
    this.kernelOnly = opts.kernelOnly ?? false;
  }

  get tag(): string {
    return this.set.tag;
  }

  /** Build the whole lab; on any failure what was built is removed and the error rethrown. */
  static build(opts: TopologyOptions = {}): Topology {
    const t = new Topology(opts);
    try {
      if (opts.variant === 'routed') buildRouted(t);
      else t.buildAll();
    } catch (e) {
      void t.set.cleanup(0);
      throw e;
    }
    return t;
  }

  private has(f: Family): boolean {
    return this.families.includes(f);
  }

  /** Namespace for `role`, with DAD off (addresses usable at once) and rp_filter relaxed. */
  addNamespace(role: string, router = false): string {
    const ns = this.set.add(role);
    (this.ns as Record<string, string>)[role] = ns;
    // Before any interface exists, so every new interface inherits these defaults.
    this.set.sysctl(ns, 'net.ipv6.conf.all.accept_dad', 0);
    this.set.sysctl(ns, 'net.ipv6.conf.default.accept_dad', 0);
    // Strict rp_filter drops legitimate asymmetric paths here (return traffic src S enters the front
    // from a back link while S routes into the TUN); effective value is max(all, dev), so both to 0.
    this.set.sysctl(ns, 'net.ipv4.conf.all.rp_filter', 0);
    this.set.sysctl(ns, 'net.ipv4.conf.default.rp_filter', 0);
    if (router) {
      this.set.sysctl(ns, 'net.ipv4.ip_forward', 1);
      this.set.sysctl(ns, 'net.ipv6.conf.all.forwarding', 1);
    }
    return ns;
  }

  /** veth `name` between two namespaces with the plan's addresses [near, far] per family. */
  link(name: LinkName, near: LinkEnd, far: LinkEnd, addrs: { v6: readonly string[]; v4: readonly string[] }): void {
    this.set.veth(near.ns, near.iface, far.ns, far.iface);
    if (this.has('ipv6')) {
      this.set.ip(near.ns, `addr add ${addrs.v6[0]}/${LINK_PREFIX_LEN.v6} dev ${near.iface} nodad`);
      this.set.ip(far.ns, `addr add ${addrs.v6[1]}/${LINK_PREFIX_LEN.v6} dev ${far.iface} nodad`);
    }
    if (this.has('ipv4')) {
      this.set.ip(near.ns, `addr add ${addrs.v4[0]}/${LINK_PREFIX_LEN.v4} dev ${near.iface}`);
      this.set.ip(far.ns, `addr add ${addrs.v4[1]}/${LINK_PREFIX_LEN.v4} dev ${far.iface}`);
    }
    this.links.set(name, { near, far });
  }

  linkOf(name: LinkName): Link {
    const l = this.links.get(name);
    if (!l) throw new Error(`no link ${name} (have ${[...this.links.keys()].join(', ')})`);
    return l;
  }

  private route(ns: string, dst: string, via: string): void {
    this.set.ip(ns, `route replace ${dst} via ${via}`);
  }

  private buildAll(): void {
    const client = this.addNamespace('client');
    const front = this.addNamespace('front', true);
    const backs: Record<BackName, string> = { back1: this.addNamespace('back1', true), back2: this.addNamespace('back2', true) };
    const servers = { server1: this.addNamespace('server1'), server2: this.addNamespace('server2') };

    this.link('client-link', { ns: client, iface: 'eth-front' }, { ns: front, iface: 'eth-client' }, LINKS.client);
    for (const b of ['back1', 'back2'] as const) {
      this.link(`${b}-link`, { ns: front, iface: `eth-${b}` }, { ns: backs[b], iface: 'eth-front' }, LINKS[b]);
      const srv = BACKS[b].server;
      this.link(`${srv}-link`, { ns: backs[b], iface: 'eth-server' }, { ns: servers[srv], iface: 'eth-back' }, LINKS[srv]);
    }

    // Client: its addresses (/128, /32 on lo, so curl --interface ADDR picks the source) and S via the front.
    for (const name of CLIENT_NAMES) {
      const c = CLIENTS[name];
      if (!this.has(c.family)) continue;
      this.set.ip(client, `addr add ${c.address}/${c.family === 'ipv6' ? 128 : 32} dev lo`);
    }
    if (this.has('ipv6')) this.route(client, `${S6}/128`, LINKS.client.v6[1]);
    if (this.has('ipv4')) this.route(client, `${S4}/32`, LINKS.client.v4[1]);

    // Front: client prefixes back to the client, B of each back over its link.
    for (const name of CLIENT_NAMES) {
      const c = CLIENTS[name];
      if (!this.has(c.family)) continue;
      this.route(front, c.prefix, c.family === 'ipv6' ? LINKS.client.v6[0] : LINKS.client.v4[0]);
    }
    for (const b of ['back1', 'back2'] as const) {
      if (this.has('ipv6')) this.route(front, `${BACKS[b].v6}/128`, LINKS[b].v6[1]);
      if (this.has('ipv4')) this.route(front, `${BACKS[b].v4}/32`, LINKS[b].v4[1]);
    }
    if (this.kernelOnly) {
      if (this.has('ipv6')) this.route(front, `${S6}/128`, LINKS.back1.v6[1]);
      if (this.has('ipv4')) this.route(front, `${S4}/32`, LINKS.back1.v4[1]);
    }

    // Backs: client prefixes via the front, S via their server.
    for (const b of ['back1', 'back2'] as const) {
      const ns = backs[b];
      const srv = BACKS[b].server;
      for (const name of CLIENT_NAMES) {
        const c = CLIENTS[name];
        if (!this.has(c.family)) continue;
        this.route(ns, c.prefix, c.family === 'ipv6' ? LINKS[b].v6[0] : LINKS[b].v4[0]);
      }
      // The front's health-probe sources (answers of the servers to probes through this back).
      if (this.has('ipv6')) this.route(ns, PROBE.v6, LINKS[b].v6[0]);
      if (this.has('ipv4')) this.route(ns, PROBE.v4, LINKS[b].v4[0]);
      if (this.has('ipv6')) this.route(ns, `${S6}/128`, LINKS[srv].v6[1]);
      if (this.has('ipv4')) this.route(ns, `${S4}/32`, LINKS[srv].v4[1]);
    }

    // Servers: S co-addressed on lo, default route to their back.
    for (const srv of ['server1', 'server2'] as const) {
      const ns = servers[srv];
      if (this.has('ipv6')) {
        this.set.ip(ns, `addr add ${S6}/128 dev lo`);
        this.set.ip(ns, `route add default via ${LINKS[srv].v6[0]}`);
      }
      if (this.has('ipv4')) {
        this.set.ip(ns, `addr add ${S4}/32 dev lo`);
        this.set.ip(ns, `route add default via ${LINKS[srv].v4[0]}`);
      }
    }
  }

  /** Kill everything started in the namespaces and delete them. */
  async cleanup(): Promise<void> {
    await this.set.cleanup();
  }
}
