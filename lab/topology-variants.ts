// Lab topology variants beyond the basic two-arm one (lab/topology.ts). 'routed': everything hangs
// off one router `net`, the draft's "Network" cloud:
//
//   client --client-link-- net --front-link--  front   (one arm: Figure 5; the gateway of Figure 12)
//                              --front2-link-- front2  (second-stage front: Figure 4)
//                              --back1-link--  back1 --server1-link-- server1
//                              --back2-link--  back2 --server2-link-- server2
//
// Client traffic to S goes client -> net -> front (S is routed to the front) -> net -> back ->
// server; the servers' answers go back -> net -> client and never cross the front (one arm). The
// fabric links are ordinary router links: lower the MTU of back1-link (lowerLinkMtu) and `net`
// sends Packet Too Big / Fragmentation Needed for the front's tunnel packets, as a router in the
// middle of a fabric would. Namespace roles: client, net, front, front2, back1, back2, server1,
// server2. Interface names: `eth-<peer role>` on each side.
import {
  BACKS,
  CLIENTS,
  CLIENT_NAMES,
  LINKS,
  LINK_PREFIX_LEN,
  PROBE,
  S4,
  S6,
} from './address-plan.js';
import type { Topology } from './topology.js';

/** Addresses only the routed variant uses (documentation prefixes, clear of the basic plan). */
export const ROUTED = {
  /** The front's tunnel address: returnEncap.gateway of the backs, routed into the front's TUN. */
  gateway: { v6: '2001:db8:f:1::1', v4: '192.0.2.81' },
  /** The second-stage front's address: a service of front2 (translate) and its tunnel address (encap). */
  front2: { v6: '2001:db8:f:2::80', v4: '192.0.2.82' },
  links: {
    client: LINKS.client, // [client, net]
    front: { v6: ['2001:db8:e5::1', '2001:db8:e5::2'], v4: ['203.0.113.153', '203.0.113.154'] }, // [net, front]
    front2: { v6: ['2001:db8:e6::1', '2001:db8:e6::2'], v4: ['203.0.113.157', '203.0.113.158'] }, // [net, front2]
    back1: LINKS.back1, // [net, back1]
    back2: LINKS.back2, // [net, back2]
    server1: LINKS.server1, // [back1, server1]
    server2: LINKS.server2, // [back2, server2]
  },
} as const;

export type TopologyVariant = 'basic' | 'routed';

function route(t: Topology, ns: string, dst: string, via: string): void {
  t.set.ip(ns, `route replace ${dst} via ${via}`);
}

/** The 'routed' variant (see the header). */
export function buildRouted(t: Topology): void {
  const has = (f: 'ipv6' | 'ipv4') => t.families.includes(f);
  const L = ROUTED.links;
  const client = t.addNamespace('client');
  const net = t.addNamespace('net', true);
  const front = t.addNamespace('front', true);
  const front2 = t.addNamespace('front2', true);
  const backs = { back1: t.addNamespace('back1', true), back2: t.addNamespace('back2', true) };
  const servers = { server1: t.addNamespace('server1'), server2: t.addNamespace('server2') };

  t.link('client-link', { ns: client, iface: 'eth-net' }, { ns: net, iface: 'eth-client' }, L.client);
  t.link('front-link', { ns: net, iface: 'eth-front' }, { ns: front, iface: 'eth-net' }, L.front);
  t.link('front2-link', { ns: net, iface: 'eth-front2' }, { ns: front2, iface: 'eth-net' }, L.front2);
  for (const b of ['back1', 'back2'] as const) {
    t.link(`${b}-link`, { ns: net, iface: `eth-${b}` }, { ns: backs[b], iface: 'eth-net' }, L[b]);
    const srv = BACKS[b].server;
    t.link(`${srv}-link`, { ns: backs[b], iface: 'eth-server' }, { ns: servers[srv], iface: 'eth-back' }, L[srv]);
  }

  // Client: its addresses on lo; everything via the router.
  for (const name of CLIENT_NAMES) {
    const c = CLIENTS[name];
    if (has(c.family)) t.set.ip(client, `addr add ${c.address}/${c.family === 'ipv6' ? 128 : 32} dev lo`);
  }
  if (has('ipv6')) route(t, client, 'default', L.client.v6[1]);
  if (has('ipv4')) route(t, client, 'default', L.client.v4[1]);

  // The router: clients, S and the front's gateway/probe prefixes to the front, B to each back, F2 to front2.
  for (const name of CLIENT_NAMES) {
    const c = CLIENTS[name];
    if (has(c.family)) route(t, net, c.prefix, c.family === 'ipv6' ? L.client.v6[0] : L.client.v4[0]);
  }
  if (has('ipv6')) {
    for (const d of [`${S6}/128`, `${ROUTED.gateway.v6}/128`, PROBE.v6]) route(t, net, d, L.front.v6[1]);
    route(t, net, `${ROUTED.front2.v6}/128`, L.front2.v6[1]);
    for (const b of ['back1', 'back2'] as const) route(t, net, `${BACKS[b].v6}/128`, L[b].v6[1]);
  }
  if (has('ipv4')) {
    for (const d of [`${S4}/32`, `${ROUTED.gateway.v4}/32`, PROBE.v4]) route(t, net, d, L.front.v4[1]);
    route(t, net, `${ROUTED.front2.v4}/32`, L.front2.v4[1]);
    for (const b of ['back1', 'back2'] as const) route(t, net, `${BACKS[b].v4}/32`, L[b].v4[1]);
  }

  // Fronts and backs: default via the router (the services route S, F2, B and the gateway into their TUNs).
  for (const [ns, l] of [[front, L.front], [front2, L.front2], [backs.back1, L.back1], [backs.back2, L.back2]] as const) {
    if (has('ipv6')) route(t, ns, 'default', l.v6[0]);
    if (has('ipv4')) route(t, ns, 'default', l.v4[0]);
  }
  for (const b of ['back1', 'back2'] as const) {
    const srv = BACKS[b].server;
    if (has('ipv6')) route(t, backs[b], `${S6}/128`, L[srv].v6[1]);
    if (has('ipv4')) route(t, backs[b], `${S4}/32`, L[srv].v4[1]);
  }

  // Servers: S co-addressed on lo, default route to their back.
  for (const srv of ['server1', 'server2'] as const) {
    const ns = servers[srv];
    if (has('ipv6')) {
      t.set.ip(ns, `addr add ${S6}/128 dev lo`);
      t.set.ip(ns, `route add default via ${L[srv].v6[0]}`);
    }
    if (has('ipv4')) {
      t.set.ip(ns, `addr add ${S4}/32 dev lo`);
      t.set.ip(ns, `route add default via ${L[srv].v4[0]}`);
    }
  }
  void LINK_PREFIX_LEN;
}

/** Set the MTU of both ends of a link (a smaller fabric link in the middle of the path). */
export function setLinkMtu(t: Topology, link: string, mtu: number): void {
  const l = t.linkOf(link);
  t.set.ip(l.near.ns, `link set dev ${l.near.iface} mtu ${mtu}`);
  t.set.ip(l.far.ns, `link set dev ${l.far.iface} mtu ${mtu}`);
}
