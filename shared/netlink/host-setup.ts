// Host setup for a service through rtnetlink and /proc/sys: link up, MTU, addresses, routes into the
// TUN, policy routing, sysctls. Every change is recorded with its undo; teardown() undoes them in
// reverse. Something that already existed (EEXIST, or a sysctl already at the wanted value) is not
// ours and is left alone on teardown. Main thread only; nothing here is on the packet path.
import { readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { createRtNetlink, FlagsNew, type RtNetlinkSocket, type rt } from 'netlink';
import type { Logger } from '../log.js';
import { afOf, formatIp, networkOf, parseIp, prefixBytes, type IpFamily, type IpPrefix } from './ip-prefix.js';
import { parsePrefix } from '../table/addr.js';
import { errnoCode, HostSetupError } from './netlink-error.js';
import { PROC_SYS, sysctlName, sysctlPath, type SysctlKey } from './sysctl.js';
import { featureErrno, netdevFeature } from './netdev-feature.js';

/** A route into a device (no gateway: the TUN is point-to-point). */
export interface RouteSpec {
  /** "192.0.2.80/32", "2001:db8:5::80/128", "0.0.0.0/0", "::/0"; a bare address means /32 or /128. */
  dst: string;
  dev: string;
  /** Routing table id (default main = 254). */
  table?: number;
  metric?: number;
}

/** An `ip rule` equivalent: packets matching `from` and/or arriving on `iif` look up `table`. */
export interface RuleSpec {
  family: IpFamily;
  from?: string;
  iif?: string;
  table: number;
  /** Rule preference (lower first). Default 1000: before the main table's 32766. */
  priority?: number;
}

/** Back's return path: packets from `from` (or anything, if omitted) arriving on `iif` enter `dev`. */
export interface ReturnPathSpec {
  iif: string;
  dev: string;
  table: number;
  /** Source prefixes (the services S). Omitted: one rule per family matching any source. */
  from?: readonly string[];
  /** Families to install when `from` is omitted (default both). */
  families?: readonly IpFamily[];
  priority?: number;
}

export interface TunHostConfig {
  name: string;
  mtu?: number;
  /** Addresses to configure on the device ("2001:db8::1/64"); often none for mslb. */
  addresses?: readonly string[];
  /** Prefixes routed into the device (main table). */
  routes?: readonly string[];
  /** Turn on forwarding for these families (default: both). */
  forwarding?: readonly IpFamily[];
  /** Set accept_local=1 on the device (front with an IPv4 outer source local to the host). */
  acceptLocal?: boolean;
}

export interface RouteInfo {
  /** Interface the kernel would use toward the address. */
  ifindex: number;
  ifname: string;
  /** Path MTU: the route's MTU metric when it has one (locked or PMTU-cached), else the link MTU. */
  mtu: number;
  linkMtu: number;
  gateway?: string;
  /** Preferred source address the kernel would pick. */
  source?: string;
}

export interface HostSetupOptions {
  log?: Logger;
  /** Root of the sysctl tree (tests). */
  procSys?: string;
  /** Per-request timeout, ms (default 5000): a netlink request never hangs start-up or shutdown. */
  timeoutMs?: number;
}

interface UndoStep {
  what: string;
  run: () => Promise<void>;
}

const MAIN_TABLE = 254;
const DEFAULT_RULE_PRIORITY = 1000;
/** Errors that mean "already gone" on removal: device deleted (a closed TUN), address/route/rule absent. */
const GONE = new Set(['ENODEV', 'ENOENT', 'ESRCH', 'EADDRNOTAVAIL', 'ENXIO']);
const CREATE_EXCL = { flags: FlagsNew.CREATE | FlagsNew.EXCL };

export class HostSetup {
  private readonly undo: UndoStep[] = [];
  private readonly procSys: string;
  private readonly timeout: number;
  private closed = false;

  constructor(
    private readonly sock: RtNetlinkSocket,
    private readonly opts: HostSetupOptions = {},
  ) {
    this.procSys = opts.procSys ?? PROC_SYS;
    this.timeout = opts.timeoutMs ?? 5000;
  }

  /** Open an rtnetlink socket in the calling thread's network namespace. */
  static open(opts: HostSetupOptions = {}): HostSetup {
    return new HostSetup(createRtNetlink(), opts);
  }

  /** What is recorded for teardown, oldest first (for logs and tests). */
  get recorded(): readonly string[] {
    return this.undo.map((u) => u.what);
  }

  // ---- queries -------------------------------------------------------------------------------

  async linkIndex(name: string): Promise<number> {
    return (await this.link(name)).data.index as number;
  }

  async linkMtu(name: string): Promise<number> {
    return (await this.link(name)).attrs.mtu as number;
  }

  async linkIsUp(name: string): Promise<boolean> {
    return !!(await this.link(name)).data.flags?.up;
  }

  /** The interface and MTU the kernel would use to reach `address` (RTM_GETROUTE). */
  async routeToward(address: string): Promise<RouteInfo> {
    const ip = parseIp(address);
    const arg = address;
    const msgs = await this.call('getRoute', arg, () =>
      this.sock.getRoute({ family: afOf(ip.family), dstLen: ip.family === 4 ? 32 : 128 }, { dst: ip.bytes }, { timeout: this.timeout }),
    );
    const r = msgs[0];
    if (!r || r.attrs.oif === undefined) throw new HostSetupError('getRoute', arg, new Error('no outgoing interface (ENETUNREACH)'));
    const ifindex = r.attrs.oif;
    const links = await this.call('getLink', `index ${ifindex}`, () => this.sock.getLink({ index: ifindex }, {}, { timeout: this.timeout }));
    const linkMtu = links[0]?.attrs.mtu ?? 0;
    const metricMtu = r.attrs.metrics?.mtu;
    const routeMtu = metricMtu && metricMtu.length >= 4 ? metricMtu.readUInt32LE(0) : 0;
    return {
      ifindex,
      ifname: links[0]?.attrs.ifname ?? String(ifindex),
      mtu: routeMtu > 0 ? Math.min(routeMtu, linkMtu || routeMtu) : linkMtu,
      linkMtu,
      gateway: r.attrs.gateway ? formatIp(r.attrs.gateway) : undefined,
      source: r.attrs.prefsrc ? formatIp(r.attrs.prefsrc) : undefined,
    };
  }

  async readSysctl(key: SysctlKey): Promise<string> {
    const path = sysctlPath(key, this.procSys);
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch (e) {
      throw new HostSetupError('readSysctl', sysctlName(key), e);
    }
  }

  // ---- changes (recorded) --------------------------------------------------------------------

  /** Bring a link up; if it was down, teardown takes it down again. */
  async linkUp(name: string): Promise<void> {
    const l = await this.link(name);
    const index = l.data.index as number;
    if (l.data.flags?.up) return;
    await this.call('linkUp', name, () => this.sock.setLink({ index, flags: { up: true }, change: { up: true } }, {}, { timeout: this.timeout }));
    this.record(`linkUp ${name}`, () => this.gone('linkDown', name, () => this.sock.setLink({ index, flags: {}, change: { up: true } }, {}, { timeout: this.timeout })));
  }

  /** Set a link's MTU; teardown restores the previous one. */
  async setMtu(name: string, mtu: number): Promise<void> {
    const l = await this.link(name);
    const index = l.data.index as number;
    const prev = l.attrs.mtu as number;
    if (prev === mtu) return;
    await this.call('setMtu', `${name} ${mtu}`, () => this.sock.setLink({ index }, { mtu }, { timeout: this.timeout }));
    this.record(`setMtu ${name} ${mtu} (was ${prev})`, () =>
      this.gone('setMtu', `${name} ${prev}`, () => this.sock.setLink({ index }, { mtu: prev }, { timeout: this.timeout })),
    );
  }

  /** Add "addr/len" to a device. Returns false when it was already there (then it is not ours). */
  async addAddress(dev: string, cidr: string): Promise<boolean> {
    const p = this.prefix(cidr, 'addAddress');
    const index = await this.linkIndex(dev);
    // IPv6: no DAD, the address is usable at once (a TUN has no neighbours to collide with).
    const data: rt.Address = { family: afOf(p.family), prefixlen: p.len, index, flags: p.family === 6 ? { nodad: true } : {} };
    const attrs: rt.AddressAttrs = { local: p.bytes, address: p.bytes };
    const arg = `${cidr} dev ${dev}`;
    if (!(await this.create('addAddress', arg, () => this.sock.newAddress(data, attrs, { ...CREATE_EXCL, timeout: this.timeout })))) return false;
    this.record(`addAddress ${arg}`, () => this.gone('delAddress', arg, () => this.sock.delAddress(data, attrs, { timeout: this.timeout })));
    return true;
  }

  /** Route a prefix into a device. Returns false when the same route existed (not ours). */
  async addRoute(spec: RouteSpec): Promise<boolean> {
    const p = networkOf(this.prefix(spec.dst, 'addRoute'));
    const oif = await this.linkIndex(spec.dev);
    const table = spec.table ?? MAIN_TABLE;
    const data: rt.Route = {
      family: afOf(p.family),
      dstLen: p.len,
      // Tables above 255 only fit the RTA_TABLE attribute; the header then says "unspec".
      table: table < 256 ? table : 0,
      protocol: 'STATIC',
      scope: p.family === 4 ? 'LINK' : 'UNIVERSE',
      type: 'UNICAST',
    };
    const attrs: rt.RouteAttrs = { oif, table };
    if (p.len > 0) attrs.dst = p.bytes;
    if (spec.metric !== undefined) attrs.priority = spec.metric;
    const arg = `${formatIp(p.bytes)}/${p.len} dev ${spec.dev} table ${table}${spec.metric !== undefined ? ` metric ${spec.metric}` : ''}`;
    if (!(await this.create('addRoute', arg, () => this.sock.newRoute(data, attrs, { ...CREATE_EXCL, timeout: this.timeout })))) return false;
    this.record(`addRoute ${arg}`, () => this.gone('delRoute', arg, () => this.sock.delRoute(data, attrs, { timeout: this.timeout })));
    return true;
  }

  /** Add a policy rule. Returns false when an identical rule existed (not ours). */
  async addRule(spec: RuleSpec): Promise<boolean> {
    if (spec.from === undefined && spec.iif === undefined) throw new HostSetupError('addRule', `table ${spec.table}`, new Error('a rule needs from or iif (EINVAL)'));
    const p = spec.from !== undefined ? networkOf(this.prefix(spec.from, 'addRule')) : undefined;
    if (p && p.family !== spec.family) throw new HostSetupError('addRule', spec.from as string, new Error('family mismatch (EINVAL)'));
    const priority = spec.priority ?? DEFAULT_RULE_PRIORITY;
    const data: rt.Rule = {
      family: afOf(spec.family),
      srcLen: p?.len ?? 0,
      table: spec.table < 256 ? spec.table : 0,
      action: 'toTbl',
    };
    const attrs: rt.RuleAttrs = { table: spec.table, priority };
    if (p && p.len > 0) attrs.src = p.bytes;
    if (spec.iif !== undefined) attrs.iifname = spec.iif;
    const arg = `ipv${spec.family}${p ? ` from ${formatIp(p.bytes)}/${p.len}` : ''}${spec.iif ? ` iif ${spec.iif}` : ''} lookup ${spec.table} pref ${priority}`;
    if (!(await this.create('addRule', arg, () => this.sock.newRule(data, attrs, { ...CREATE_EXCL, timeout: this.timeout })))) return false;
    this.record(`addRule ${arg}`, () => this.gone('delRule', arg, () => this.sock.delRule(data, attrs, { timeout: this.timeout })));
    return true;
  }

  /**
   * Policy routing for the back's returnPath: rules (from each prefix, iif X -> table N) and a
   * default route in table N into `dev`, per family used.
   */
  async addReturnPath(spec: ReturnPathSpec): Promise<void> {
    const rules: RuleSpec[] =
      spec.from && spec.from.length > 0
        ? spec.from.map((f) => ({ family: this.prefix(f, 'addRule').family, from: f, iif: spec.iif, table: spec.table, priority: spec.priority }))
        : (spec.families ?? [4, 6]).map((family) => ({ family, iif: spec.iif, table: spec.table, priority: spec.priority }));
    const families = new Set(rules.map((r) => r.family));
    for (const f of families) await this.addRoute({ dst: f === 4 ? '0.0.0.0/0' : '::/0', dev: spec.dev, table: spec.table });
    for (const r of rules) await this.addRule(r);
  }

  /** Write a sysctl; teardown writes the previous value back (only if it changed). */
  async setSysctl(key: SysctlKey, value: string | number): Promise<void> {
    const name = sysctlName(key);
    const path = sysctlPath(key, this.procSys);
    const want = String(value);
    const prev = await this.readSysctl(key);
    if (prev === want) return;
    try {
      await writeFile(path, want);
    } catch (e) {
      throw new HostSetupError('setSysctl', `${name}=${want}`, e);
    }
    this.record(`setSysctl ${name}=${want} (was ${prev})`, async () => {
      try {
        await writeFile(path, prev);
      } catch (e) {
        // The device-specific key vanishes with its device; nothing to restore then.
        if (!GONE.has(errnoCode(e))) throw new HostSetupError('restoreSysctl', `${name}=${prev}`, e);
      }
    });
  }

  /**
   * Turn an ethtool feature of an interface on (`ethtool -K DEV NAME on`, e.g. "rx-gro",
   * "rx-udp-gro-forwarding"); teardown turns it off again if it was off before. Throws
   * HostSetupError when the interface or the feature does not exist or the kernel keeps it off.
   */
  async enableFeature(dev: string, name: string): Promise<void> {
    const was = netdevFeature(dev, name, -1);
    if (was < 0) throw new HostSetupError('enableFeature', `${dev} ${name}`, Object.assign(new Error(featureErrno(was)), { code: featureErrno(was) }));
    if (was === 1) return;
    const now = netdevFeature(dev, name, 1);
    if (now !== 1) {
      const code = now < 0 ? featureErrno(now) : 'EOPNOTSUPP';
      throw new HostSetupError('enableFeature', `${dev} ${name}`, Object.assign(new Error(now < 0 ? code : 'the kernel kept it off'), { code }));
    }
    this.record(`enableFeature ${dev} ${name} (was off)`, async () => {
      const r = netdevFeature(dev, name, 0);
      // The interface may be gone by now: nothing to restore then.
      if (r < 0 && r !== -constants.errno.ENODEV) throw new HostSetupError('restoreFeature', `${dev} ${name} off`, Object.assign(new Error(featureErrno(r)), { code: featureErrno(r) }));
    });
  }

  async enableForwarding(families: readonly IpFamily[] = [4, 6]): Promise<void> {
    if (families.includes(4)) await this.setSysctl('net.ipv4.ip_forward', 1);
    if (families.includes(6)) await this.setSysctl('net.ipv6.conf.all.forwarding', 1);
  }

  /**
   * Packets written into the TUN with sources the kernel would route elsewhere must not be dropped by
   * reverse-path filtering. The effective rp_filter of a device is max(all, dev): the device goes to
   * 0, and `all` only from strict (1) to loose (2), which passes every source the host has a route
   * to, so the host's other interfaces keep a reverse-path check. `default` is left alone: it would
   * change every interface created later. accept_local lets an IPv4 source local to the host in.
   */
  async relaxTunSysctls(dev: string, acceptLocal: boolean): Promise<void> {
    const all: SysctlKey = ['net', 'ipv4', 'conf', 'all', 'rp_filter'];
    if ((await this.readSysctl(all)) === '1') await this.setSysctl(all, 2);
    await this.setSysctl(['net', 'ipv4', 'conf', dev, 'rp_filter'], 0);
    if (acceptLocal) await this.setSysctl(['net', 'ipv4', 'conf', dev, 'accept_local'], 1);
    // No IPv6 link-local address on the TUN (addr_gen_mode 1 = none): the kernel then sends no
    // router solicitations or DAD probes into it (MLD reports it still sends; the processors ignore them).
    await this.setSysctl(['net', 'ipv6', 'conf', dev, 'addr_gen_mode'], 1);
  }

  /** The usual sequence for a service's TUN: MTU, sysctls, up, addresses, routes. */
  async configureTun(c: TunHostConfig): Promise<void> {
    if (c.mtu !== undefined) await this.setMtu(c.name, c.mtu);
    await this.enableForwarding(c.forwarding ?? [4, 6]);
    await this.relaxTunSysctls(c.name, c.acceptLocal ?? false);
    await this.linkUp(c.name);
    for (const a of c.addresses ?? []) await this.addAddress(c.name, a);
    for (const r of c.routes ?? []) await this.addRoute({ dst: r, dev: c.name });
  }

  /**
   * Undo everything recorded, newest first. Never throws: each failure is logged and returned, and
   * the remaining steps still run (a half-torn-down host is worse than one logged error).
   */
  async teardown(): Promise<HostSetupError[]> {
    const errors: HostSetupError[] = [];
    while (this.undo.length > 0) {
      const step = this.undo.pop() as UndoStep;
      try {
        await step.run();
        this.opts.log?.debug('host_setup_undone', { what: step.what });
      } catch (e) {
        const err = e instanceof HostSetupError ? e : new HostSetupError('teardown', step.what, e);
        errors.push(err);
        this.opts.log?.warn('host_setup_undo_failed', { what: step.what, error: err.message });
      }
    }
    return errors;
  }

  /** Close the netlink socket (after teardown). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.socket.close();
  }

  // ---- helpers -------------------------------------------------------------------------------

  private record(what: string, run: () => Promise<void>): void {
    this.undo.push({ what, run });
    this.opts.log?.debug('host_setup_done', { what });
  }

  /** "addr/len" or a bare address (/32, /128) as bytes, host bits kept; an EINVAL HostSetupError otherwise. */
  private prefix(s: string, op: string): IpPrefix {
    const p = parsePrefix(s);
    if (!p) throw new HostSetupError(op, s, Object.assign(new Error(`not an address or prefix: ${JSON.stringify(s)}`), { code: 'EINVAL' }));
    return prefixBytes(p);
  }

  private async link(name: string): Promise<rt.LinkMessage> {
    const msgs = await this.call('getLink', name, () => this.sock.getLink({}, { ifname: name }, { timeout: this.timeout }));
    if (!msgs[0] || msgs[0].data.index === undefined) throw new HostSetupError('getLink', name, new Error('no such device (ENODEV)'));
    return msgs[0];
  }

  private async call<T>(op: string, arg: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw new HostSetupError(op, arg, e);
    }
  }

  /** Run a create; false on EEXIST (someone else's object), throw on anything else. */
  private async create(op: string, arg: string, f: () => Promise<unknown>): Promise<boolean> {
    try {
      await f();
      return true;
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') {
        this.opts.log?.info('host_setup_exists', { op, arg });
        return false;
      }
      throw new HostSetupError(op, arg, e);
    }
  }

  /** Run a removal; an object or device that is already gone is success. */
  private async gone(op: string, arg: string, f: () => Promise<unknown>): Promise<void> {
    try {
      await f();
    } catch (e) {
      if (!GONE.has(errnoCode(e))) throw new HostSetupError(op, arg, e);
    }
  }
}
