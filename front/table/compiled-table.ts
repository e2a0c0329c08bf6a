// A validated table compiled into the immutable form the data path reads: typed arrays over
// SharedArrayBuffers plus a small JSON meta part. `toTransfer()` gives a structured-clonable
// object: postMessage() of it shares the memory with every worker (no copy per worker), and
// `CompiledTable.fromTransfer()` rebuilds the view there.
//
// Back up/down: `up[slot]` (Uint8Array over a SAB owned by the service, kept across reloads) is
// flipped by the main thread. Every pool has two Maglev tables: `full` over all configured members
// (never changes with health) and `alive` over the members that are up, rebuilt in place by
// `refreshUp()` on the main thread. A key whose `full` member is up stays there, so a back going
// down moves only its own keys; keys of a down member go to `alive`.
//
// Reloads: `compile` given the table in force (`previous`) reuses its arrays where the new ones
// would be equal, so a frequent reload leaves little shared memory behind for every isolate to
// collect: the Maglev tables when every pool has the same members (they are name-seeded, so equal
// members give equal tables; `alive` is then shared too, with its record of which up-pattern it
// holds, so whichever table refreshes it keeps it right), and the prefix tables' ranges and indexes
// (shared/table/prefix-table.ts).

import { MODE_ENCAP, MODE_TRANSLATE } from '../../shared/packet/constants.js';
import { parseAddress, type Family } from '../../shared/table/addr.js';
import { PrefixTable, PrefixTableBuilder, type PrefixTableShared } from '../../shared/table/prefix-table.js';
import { buildMaglev, BUILTIN_HASH_KEY, MAGLEV_DEFAULT_SIZE } from './maglev.js';
import { hash4, KEY_SEED } from '../../shared/packet/hash32.js';
import { sipKey } from '../../shared/packet/siphash.js';
import type { HealthCheckSpec, PoolKey, ValidatedTable, BackMode } from './table-loader.js';

// backMode holds these; the front's processors compare against them where they read the table.
export { MODE_ENCAP, MODE_TRANSLATE };
export const KEY_SOURCE = 0;
export const KEY_LABEL = 1;
export const KEY_SOURCE_LABEL = 2;
/** backServes values: no route of the service leads to the back; only as a weight-0 member; yes. */
export const SERVES_NONE = 0;
export const SERVES_DRAINING = 1;
export const SERVES_YES = 2;

/** A pool member as `mslb lookup` and /table show it. */
export interface MemberState { name: string; weight: number; up: boolean; draining: boolean }

export interface CompileOptions {
  services: string[]; // the front's services, in config order (service index = position)
  flowLabelEnabled: boolean;
  lbspEnabled: boolean;
  /** Stable backend slot per back name (kept across reloads by the caller). */
  slotOf: (name: string) => number;
  /** Shared up[slot] array (1 = up); default: a new one with everything up. */
  up?: Uint8Array;
  maglevSize?: number;
  /** The front's hashKey, 32 hex digits (default: the built-in key). */
  hashKey?: string;
  /**
   * How many of the table's routes (from the start) are the operator's; the rest (health-probe
   * host routes) do not make a back one of a service's for the LBSP server segment. Default: all.
   */
  ownRoutes?: number;
  /** The table in force: arrays equal to its ones are reused instead of allocated again. */
  previous?: CompiledTable;
}

/** The JSON part. `view` is what GET /table returns (plus loadedAt and source). */
export interface CompiledMeta {
  source: string;
  loadedAt: string;
  services: string[];
  backNames: string[];
  targetNames: string[]; // "pool:web" | "back:b1"
  routes4: number;
  routes6: number;
  flowLabelEnabled: boolean;
  lbspEnabled: boolean;
  maglevSize: number;
  /** The hash key is the built-in one (anyone can aim keys at one back). */
  builtInHashKey: boolean;
  view: { backs: Record<string, unknown>; pools: Record<string, unknown>; routes: unknown[]; loadedAt: string; source: string };
  healthChecks: Record<string, HealthCheckSpec | null>;
}

export interface CompiledArrays {
  serviceWords: Uint32Array; // S*4
  serviceFamily: Uint8Array; // S
  backSlot: Int32Array; // B
  backMode: Uint8Array; // B: MODE_*
  backAddrFamily: Uint8Array; // B*S: 0 = no address for that service, else 4 | 6
  backAddr: Uint32Array; // (B*S)*4
  backServerId: Uint32Array; // B*4 (zeros when none)
  lbspKeys: Uint32Array; // H*4 open-addressing hash: IPv6 form of back addresses and serverIds
  lbspVals: Int32Array; // H: back index, -1 empty
  targetKey: Uint8Array; // T: KEY_*
  targetFailClosed: Uint8Array; // T
  targetStart: Int32Array; // T: first member in `members`
  targetCount: Int32Array; // T
  targetPool: Int32Array; // T: maglev block index, -1 for a single back
  members: Int32Array; // back indices
  memberWeight: Uint16Array; // per entry of `members`: 0..1000 (0 drains)
  hashKey: Uint32Array; // 4: SipHash key words of every hash that chooses a back
  backServes: Uint8Array; // B*S: SERVES_* (may an LBSP server segment name this back for this service)
  maglevFull: Int32Array; // P*M back indices
  maglevAlive: Int32Array; // P*M back indices (-1 when no member up)
  tableOfService: Int32Array; // S: index into prefix tables
  up: Uint8Array; // by slot
}

export interface CompiledTableTransfer {
  meta: CompiledMeta;
  arrays: CompiledArrays;
  prefixTables: PrefixTableShared[];
}

function sab<T>(ctor: new (b: SharedArrayBuffer) => T, n: number, bytesPer: number): T {
  return new ctor(new SharedArrayBuffer(Math.max(1, n) * bytesPer));
}

export class CompiledTable {
  readonly meta: CompiledMeta;
  readonly a: CompiledArrays;
  readonly prefix: PrefixTable[];
  readonly serviceCount: number;
  readonly backCount: number;
  readonly maglevSize: number;
  private readonly lbspMask: number;
  /** Per pool, the up-pattern `maglevAlive` was built for (shared with the tables sharing that array). */
  private aliveSig: string[] = [];
  /** Pools' members (index, name, weight) the Maglev tables were built for ('' in a worker: no reuse). */
  private maglevKey = '';

  private constructor(meta: CompiledMeta, arrays: CompiledArrays, prefix: PrefixTable[]) {
    this.meta = meta;
    this.a = arrays;
    this.prefix = prefix;
    this.serviceCount = meta.services.length;
    this.backCount = meta.backNames.length;
    this.maglevSize = meta.maglevSize;
    this.lbspMask = arrays.lbspVals.length - 1;
  }

  toTransfer(): CompiledTableTransfer {
    return { meta: this.meta, arrays: this.a, prefixTables: this.prefix.map((p) => p.toShared()) };
  }

  static fromTransfer(t: CompiledTableTransfer): CompiledTable {
    return new CompiledTable(t.meta, t.arrays, t.prefixTables.map((p) => PrefixTable.fromShared(p)));
  }

  /** Service index for an address (family 4: word 0), or -1. Allocation-free. */
  serviceIndex(family: number, w: Uint32Array): number {
    const sw = this.a.serviceWords, sf = this.a.serviceFamily;
    for (let s = 0; s < this.serviceCount; s++) {
      if (sf[s] !== family) continue;
      const b = s * 4;
      if (sw[b] === w[0] && (family === 4 || (sw[b + 1] === w[1] && sw[b + 2] === w[2] && sw[b + 3] === w[3]))) return s;
    }
    return -1;
  }

  /** Back index whose address (any service) or serverId equals the IPv6 words, or -1. */
  backByLbspServer(w0: number, w1: number, w2: number, w3: number): number {
    const keys = this.a.lbspKeys, vals = this.a.lbspVals, mask = this.lbspMask;
    // An exact-match index, not a choice among backs: a fixed seed is enough here.
    let i = hash4(KEY_SEED, w0, w1, w2, w3) & mask;
    for (let n = 0; n <= mask; n++) {
      const v = vals[i]!;
      if (v < 0) return -1;
      const b = i * 4;
      if (keys[b] === w0 >>> 0 && keys[b + 1] === w1 >>> 0 && keys[b + 2] === w2 >>> 0 && keys[b + 3] === w3 >>> 0) return v;
      i = (i + 1) & mask;
    }
    return -1;
  }

  /** Back `b` lists the address (words of family fam) for some service. */
  backHasAddress(b: number, fam: number, w: Uint32Array): boolean {
    const S = this.serviceCount;
    const a = this.a;
    for (let s = 0; s < S; s++) {
      const k = b * S + s;
      if (a.backAddrFamily[k] !== fam) continue;
      const p = k * 4;
      if (a.backAddr[p] === w[0] && (fam === 4 || (a.backAddr[p + 1] === w[1] && a.backAddr[p + 2] === w[2] && a.backAddr[p + 3] === w[3]))) return true;
    }
    return false;
  }

  /**
   * Some back (either mode) has this address for some service. The LBSP index answers most cases
   * (an address no back and no serverId has is absent); a serverId equal to another back's address
   * falls back to a scan.
   */
  isBackAddress(fam: number, w: Uint32Array): boolean {
    const b = fam === 4 ? this.backByLbspServer(0, 0, 0xffff, w[0]!) : this.backByLbspServer(w[0]!, w[1]!, w[2]!, w[3]!);
    if (b < 0) return false;
    if (this.backHasAddress(b, fam, w)) return true;
    for (let x = 0; x < this.backCount; x++) if (this.backHasAddress(x, fam, w)) return true;
    return false;
  }

  isBackUp(back: number): boolean {
    return this.a.up[this.a.backSlot[back]!] !== 0;
  }

  /** Main thread: rebuild each pool's `alive` Maglev table whose up-member set changed. */
  refreshUp(): number {
    const a = this.a;
    const M = this.maglevSize;
    let rebuilt = 0;
    const poolTargets: number[] = [];
    for (let t = 0; t < a.targetPool.length; t++) if (a.targetPool[t]! >= 0) poolTargets.push(t);
    let scratch: Int32Array | undefined; // 4*M bytes: only when a pool needs a rebuild (reloads call this)
    for (const t of poolTargets) {
      const p = a.targetPool[t]!;
      const start = a.targetStart[t]!, count = a.targetCount[t]!;
      const names: { name: string; weight: number }[] = [];
      const include: boolean[] = [];
      let sig = '';
      for (let i = 0; i < count; i++) {
        const b = a.members[start + i]!;
        names.push({ name: this.meta.backNames[b]!, weight: a.memberWeight[start + i]! });
        const u = this.isBackUp(b);
        include.push(u);
        sig += u ? '1' : '0';
      }
      if (this.aliveSig[p] === sig) continue;
      this.aliveSig[p] = sig;
      scratch ??= new Int32Array(M);
      buildMaglev(names, scratch, include, a.hashKey);
      // Positions -> back indices, then one copy into shared memory: every entry a worker reads
      // mid-copy is a valid back index or -1, and the reader re-checks up[] anyway.
      for (let j = 0; j < M; j++) { const m = scratch[j]!; scratch[j] = m < 0 ? -1 : a.members[start + m]!; }
      a.maglevAlive.set(scratch, p * M);
      rebuilt++;
    }
    return rebuilt;
  }

  /** Members of a route target (a pool, or one back) with weight, health and drain (CLI, admin). */
  targetMembers(target: number): MemberState[] {
    const a = this.a;
    const out: MemberState[] = [];
    const start = a.targetStart[target]!, count = a.targetCount[target]!;
    const pooled = a.targetPool[target]! >= 0;
    for (let i = 0; i < count; i++) {
      const b = a.members[start + i]!;
      const weight = a.memberWeight[start + i]!;
      out.push({ name: this.meta.backNames[b]!, weight, up: this.isBackUp(b), draining: pooled && weight === 0 });
    }
    return out;
  }

  /** Address words of a back for a service: returns the family (0 when none) and fills `out`. */
  backAddress(back: number, service: number, out: Uint32Array): number {
    const k = back * this.serviceCount + service;
    const f = this.a.backAddrFamily[k]!;
    if (f !== 0) { const b = k * 4; out[0] = this.a.backAddr[b]!; out[1] = this.a.backAddr[b + 1]!; out[2] = this.a.backAddr[b + 2]!; out[3] = this.a.backAddr[b + 3]!; }
    return f;
  }

  static compile(t: ValidatedTable, o: CompileOptions): CompiledTable {
    const services = o.services;
    const S = services.length;
    const backs = t.backs;
    const B = backs.length;
    const M = o.maglevSize ?? MAGLEV_DEFAULT_SIZE;
    const backIndex = new Map(backs.map((b, i) => [b.name, i]));

    const serviceWords = sab(Uint32Array, S * 4, 4), serviceFamily = sab(Uint8Array, S, 1);
    services.forEach((s, i) => { const p = parseAddress(s)!; serviceFamily[i] = p.family; serviceWords.set(p.words, i * 4); });

    const backSlot = sab(Int32Array, B, 4), backMode = sab(Uint8Array, B, 1);
    const backAddrFamily = sab(Uint8Array, B * S, 1), backAddr = sab(Uint32Array, B * S * 4, 4);
    const backServerId = sab(Uint32Array, B * 4, 4);
    let maxSlot = 0;
    const lbspEntries: { w: Uint32Array; back: number }[] = [];
    const toV6 = (a: { family: Family; words: Uint32Array }) => a.family === 6 ? a.words : Uint32Array.of(0, 0, 0xffff, a.words[0]!);
    backs.forEach((b, i) => {
      const slot = o.slotOf(b.name);
      backSlot[i] = slot;
      if (slot > maxSlot) maxSlot = slot;
      backMode[i] = b.mode === 'encap' ? MODE_ENCAP : MODE_TRANSLATE;
      services.forEach((s, si) => {
        const at = b.addressFor[s];
        if (!at) return;
        const p = parseAddress(at)!;
        backAddrFamily[i * S + si] = p.family;
        backAddr.set(p.words, (i * S + si) * 4);
        lbspEntries.push({ w: toV6(p), back: i });
      });
      if (b.serverId) { const p = parseAddress(b.serverId)!; backServerId.set(p.words, i * 4); lbspEntries.push({ w: p.words, back: i }); }
    });
    let H = 4;
    while (H < lbspEntries.length * 2) H *= 2;
    const lbspKeys = sab(Uint32Array, H * 4, 4), lbspVals = sab(Int32Array, H, 4);
    lbspVals.fill(-1);
    for (const e of lbspEntries) {
      let i = hash4(KEY_SEED, e.w[0]!, e.w[1]!, e.w[2]!, e.w[3]!) & (H - 1);
      let dup = false;
      while (lbspVals[i]! >= 0) {
        const b = i * 4;
        if (lbspKeys[b] === e.w[0] && lbspKeys[b + 1] === e.w[1] && lbspKeys[b + 2] === e.w[2] && lbspKeys[b + 3] === e.w[3]) { dup = true; break; }
        i = (i + 1) & (H - 1);
      }
      if (dup) continue; // first back listed keeps a shared address
      lbspKeys.set(e.w, i * 4);
      lbspVals[i] = e.back;
    }

    // Targets: one per pool or directly-routed back that routes use.
    const targetNames: string[] = [];
    const targetOf = new Map<string, number>();
    const tKey: number[] = [], tFail: number[] = [], tStart: number[] = [], tCount: number[] = [], tPool: number[] = [];
    const members: number[] = [];
    const weights: number[] = [];
    const poolByName = new Map(t.pools.map((p) => [p.name, p]));
    let P = 0;
    const keyNum = (k: PoolKey) => (k === 'label' ? KEY_LABEL : k === 'source+label' ? KEY_SOURCE_LABEL : KEY_SOURCE);
    const poolMembers: { start: number; count: number }[] = [];
    for (const r of t.routes) {
      if (targetOf.has(r.to)) continue;
      const pool = poolByName.get(r.to);
      const idx = targetNames.length;
      targetOf.set(r.to, idx);
      targetNames.push(pool ? `pool:${r.to}` : `back:${r.to}`);
      const ms = pool ? pool.members.map((m) => backIndex.get(m)!) : [backIndex.get(r.to)!];
      tStart.push(members.length); tCount.push(ms.length); members.push(...ms);
      weights.push(...(pool ? pool.weights : [backs[backIndex.get(r.to)!]!.weight]));
      tKey.push(pool ? keyNum(pool.key) : KEY_SOURCE);
      tFail.push(pool?.failClosed ? 1 : 0);
      if (ms.length > 1) { tPool.push(P++); poolMembers.push({ start: tStart[idx]!, count: ms.length }); } else tPool.push(-1);
    }
    const T = targetNames.length;
    const backServes = sab(Uint8Array, B * S, 1);
    const own = o.ownRoutes ?? t.routes.length;
    for (let ri = 0; ri < own && ri < t.routes.length; ri++) {
      const r = t.routes[ri]!;
      const ti = targetOf.get(r.to)!;
      const pool = poolByName.get(r.to);
      // A route without service: applies to every service (an IPv4-mapped LBSP client segment
      // reaches IPv4 routes from an IPv6 service).
      services.forEach((svc, si) => {
        if (r.service !== undefined && r.service !== svc) return;
        for (let i = 0; i < tCount[ti]!; i++) {
          const b = members[tStart[ti]! + i]!;
          const v = tCount[ti]! > 1 && weights[tStart[ti]! + i] === 0 ? SERVES_DRAINING : SERVES_YES;
          if (v > backServes[b * S + si]!) backServes[b * S + si] = v;
        }
      });
    }
    const targetKey = sab(Uint8Array, T, 1), targetFailClosed = sab(Uint8Array, T, 1);
    const targetStart = sab(Int32Array, T, 4), targetCount = sab(Int32Array, T, 4), targetPool = sab(Int32Array, T, 4);
    targetKey.set(tKey); targetFailClosed.set(tFail); targetStart.set(tStart); targetCount.set(tCount); targetPool.set(tPool);
    const membersArr = sab(Int32Array, members.length, 4);
    membersArr.set(members);
    const memberWeight = sab(Uint16Array, weights.length, 2);
    memberWeight.set(weights);
    const keyHex = o.hashKey ?? BUILTIN_HASH_KEY;
    if (!/^[0-9a-f]{32}$/.test(keyHex)) throw new Error('hashKey must be 32 lower-case hex digits');
    const hashKey = sab(Uint32Array, 4, 4);
    hashKey.set(sipKey(Uint8Array.from(Buffer.from(keyHex, 'hex'))));
    const maglevKey = `${M}|${keyHex}|` + poolMembers.map((pm) => members.slice(pm.start, pm.start + pm.count).map((b, i) => `${b}:${backs[b]!.name}:${weights[pm.start + i]}`).join(',')).join(';');
    const prev = o.previous;
    const reuseMaglev = P > 0 && prev !== undefined && prev.maglevKey === maglevKey && o.up !== undefined && prev.a.up === o.up;
    let maglevFull: Int32Array, maglevAlive: Int32Array;
    if (reuseMaglev) {
      maglevFull = prev.a.maglevFull;
      maglevAlive = prev.a.maglevAlive;
    } else {
      maglevFull = sab(Int32Array, P * M, 4);
      maglevAlive = sab(Int32Array, P * M, 4);
      const scratch = new Int32Array(P > 0 ? M : 0); // 4*M bytes: only with pools
      poolMembers.forEach((pm, p) => {
        const ms = members.slice(pm.start, pm.start + pm.count);
        buildMaglev(ms.map((b, i) => ({ name: backs[b]!.name, weight: weights[pm.start + i]! })), scratch, undefined, hashKey);
        for (let j = 0; j < M; j++) scratch[j] = ms[scratch[j]!]!;
        maglevFull.set(scratch, p * M);
        maglevAlive.set(scratch, p * M);
      });
    }

    // Prefix tables: general routes for every service, plus per-service tables when routes say service:.
    const specific = new Set(t.routes.filter((r) => r.service).map((r) => r.service!));
    // The previous table's counterpart: its table for the same service, else its general one.
    const prevPrefix = (svc: string | null): PrefixTable | undefined => {
      if (!prev) return undefined;
      const i = svc === null ? -1 : prev.meta.services.indexOf(svc);
      return prev.prefix[i < 0 ? 0 : prev.a.tableOfService[i]!];
    };
    const build = (svc: string | null): PrefixTable => {
      const b = new PrefixTableBuilder();
      for (const r of t.routes) if (!r.service) b.add(r.family, r.words, r.len, targetOf.get(r.to)!);
      if (svc) for (const r of t.routes) if (r.service === svc) b.add(r.family, r.words, r.len, targetOf.get(r.to)!); // added last: wins a tie
      return b.build({ reuse: prevPrefix(svc) });
    };
    const prefix: PrefixTable[] = [build(null)];
    const tableOfService = sab(Int32Array, S, 4);
    services.forEach((s, i) => { if (specific.has(s)) { tableOfService[i] = prefix.length; prefix.push(build(s)); } else tableOfService[i] = 0; });

    let up = o.up;
    if (!up) { up = sab(Uint8Array, maxSlot + 1, 1); up.fill(1); }
    if (up.length <= maxSlot) throw new Error(`up[] has ${up.length} slots, back slot ${maxSlot} needs more`);

    const loadedAt = new Date().toISOString();
    const viewBacks: Record<string, unknown> = {};
    const healthChecks: Record<string, HealthCheckSpec | null> = {};
    for (const b of backs) {
      viewBacks[b.name] = {
        ...(b.address !== undefined ? { address: b.address } : {}),
        ...(b.addresses !== undefined ? { addresses: b.addresses } : {}),
        mode: b.mode satisfies BackMode,
        ...(b.serverId ? { serverId: b.serverId } : {}),
        weight: b.weight,
        ...(b.healthCheck ? { healthCheck: b.healthCheck } : {}),
      };
      healthChecks[b.name] = b.healthCheck ?? null;
    }
    const viewPools: Record<string, unknown> = {};
    // Members as the file may write them: a name at weight 1, else { back, weight }.
    for (const p of t.pools) viewPools[p.name] = { members: p.members.map((m, i) => (p.weights[i] === 1 ? m : { back: m, weight: p.weights[i] })), key: p.key, failClosed: p.failClosed };
    const viewRoutes = t.routes.map((r) => ({ source: r.source, to: r.to, ...(r.service ? { service: r.service } : {}) }));
    const meta: CompiledMeta = {
      source: t.file, loadedAt, services: [...services], backNames: backs.map((b) => b.name), targetNames,
      routes4: t.routes.filter((r) => r.family === 4).length, routes6: t.routes.filter((r) => r.family === 6).length,
      flowLabelEnabled: o.flowLabelEnabled, lbspEnabled: o.lbspEnabled, maglevSize: M, builtInHashKey: keyHex === BUILTIN_HASH_KEY,
      view: { backs: viewBacks, pools: viewPools, routes: viewRoutes, loadedAt, source: t.file },
      healthChecks,
    };
    const ct = new CompiledTable(meta, {
      serviceWords, serviceFamily, backSlot, backMode, backAddrFamily, backAddr, backServerId, lbspKeys, lbspVals,
      targetKey, targetFailClosed, targetStart, targetCount, targetPool, members: membersArr, memberWeight, hashKey, backServes, maglevFull, maglevAlive,
      tableOfService, up,
    }, prefix);
    ct.maglevKey = maglevKey;
    if (reuseMaglev) ct.aliveSig = prev.aliveSig; // one `alive` array, one record of what it holds
    ct.refreshUp();
    return ct;
  }
}
