// deploy/ artifacts checked without the tools that would run them (pure: files only):
// - the Grafana dashboard is well-formed and every metric its panels query exists in the services'
//   registries (front and back), likewise for the alert rules;
// - the Kubernetes manifests parse and carry the fields that make them work (kind/apiVersion/name,
//   NET_ADMIN only, non-root, the TUN device, ConfigMaps mounted as directories for live edits,
//   the configs inside them valid by the services' own loaders);
// - the compose file and the Dockerfile say what the SPEC asks (NET_ADMIN + /dev/net/tun only,
//   non-root, HEALTHCHECK, front and back targets, every COPY source present);
// - the systemd units limit the capability bounding set to CAP_NET_ADMIN.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ServiceMetrics } from '../../shared/metrics/registry.js';
import { newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { loadFrontConfig } from '../../front/front-config.js';
import { loadBackConfig } from '../../back/back-config.js';

const root = join(import.meta.dirname, '..', '..');
const deploy = (p: string) => join(root, 'deploy', p);
const read = (p: string) => readFileSync(deploy(p), 'utf8');

/** Every metric family name both services export (counters' samples keep their _total name). */
async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const role of ['front', 'back'] as const) {
    const m = new ServiceMetrics({
      role,
      sources: {
        blocks: () => [newCounterBlock()],
        backends: () => [{ name: 'b1', slot: 0, up: true }],
        pools: () => [{ name: 'web', members: 2, up: 1 }],
        tableRoutes: () => ({ ipv4: 1, ipv6: 1 }),
        services: () => [{ name: '2001:db8:5::80', slot: 0 }],
      },
    });
    for (const line of (await m.metrics()).split('\n')) {
      const n = /^([a-zA-Z_:][\w:]*)/.exec(line)?.[1];
      if (n && !line.startsWith('#')) names.add(n);
    }
  }
  return names;
}

/** mslb_* names used in a PromQL expression. */
function mslbNames(expr: string): string[] {
  return [...expr.matchAll(/\b(mslb_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

interface Panel {
  type: string;
  title: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}

describe('Grafana dashboard (deploy/prometheus/grafana-dashboard.json)', () => {
  const dash = JSON.parse(read('prometheus/grafana-dashboard.json')) as {
    uid: string;
    title: string;
    panels: Panel[];
    templating: { list: { name: string }[] };
  };

  it('is a dashboard with panels for traffic per back, decisions, drops, health and reloads', () => {
    expect(dash.uid).toBeTruthy();
    expect(dash.title).toMatch(/mslb/);
    const queries = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const m of ['mslb_backend_packets_total', 'mslb_decisions_total', 'mslb_drops_total', 'mslb_backend_up', 'mslb_config_reloads_total', 'mslb_pool_members_up']) {
      expect(queries, m).toContain(m);
    }
    expect(dash.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(['datasource', 'instance']));
  });

  it('every panel has a position and every non-row panel queries something', () => {
    const ids = new Set<number>();
    for (const p of dash.panels as (Panel & { id: number })[]) {
      expect(ids.has(p.id), `duplicate panel id ${p.id}`).toBe(false);
      ids.add(p.id);
      expect(p.gridPos, p.title).toBeDefined();
      expect(p.gridPos!.x + p.gridPos!.w).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) {
        expect(t.expr.trim(), p.title).not.toBe('');
        // Balanced brackets: a cheap syntax check (promtool parses them in test/e2e/deploy-tools).
        for (const [o, c] of [['(', ')'], ['{', '}'], ['[', ']']] as const) {
          expect(t.expr.split(o).length, `${p.title}: ${o}${c} in ${t.expr}`).toBe(t.expr.split(c).length);
        }
      }
    }
  });

  it('queries only metric names the services export', async () => {
    const names = await exportedNames();
    const used = new Set(dash.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => mslbNames(t.expr))));
    expect(used.size).toBeGreaterThan(10);
    for (const n of used) expect(names.has(n), `${n} is not exported by mslb-front or mslb-back`).toBe(true);
  });
});

describe('alert rules (deploy/prometheus/mslb-alerts.yml)', () => {
  const rules = (parseYaml(read('prometheus/mslb-alerts.yml')) as { groups: { rules: { alert: string; expr: string; labels: { severity: string } }[] }[] })
    .groups.flatMap((g) => g.rules);

  it('cover a back down, a pool with no member up, failing reloads, rising drops and the ICMP rate limit', () => {
    const byName = Object.fromEntries(rules.map((r) => [r.alert, r]));
    expect(byName.MslbBackDown?.expr).toContain('mslb_backend_up');
    expect(byName.MslbPoolNoMemberUp?.expr).toContain('mslb_pool_members_up');
    expect(byName.MslbTableReloadFailing?.expr).toBe('mslb_config_last_reload_successful == 0');
    expect(byName.MslbDropsRising?.expr).toContain('mslb_drops_total');
    expect(byName.MslbIcmpRateLimited?.expr).toContain('mslb_icmp_rate_limited_total');
    for (const r of rules) expect(r.labels.severity, r.alert).toMatch(/^(critical|warning|info)$/);
  });

  it('use only exported metric names', async () => {
    const names = await exportedNames();
    for (const r of rules) for (const n of mslbNames(r.expr)) expect(names.has(n), `${r.alert}: ${n}`).toBe(true);
  });
});

type K8s = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; data?: Record<string, string>; spec?: unknown };

function k8sDocs(file: string): K8s[] {
  const docs = parseAllDocuments(read(file));
  for (const d of docs) expect(d.errors, file).toEqual([]);
  return docs.map((d) => d.toJS() as K8s).filter(Boolean);
}

interface Container {
  name: string;
  image: string;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; privileged?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  args?: string[];
  livenessProbe?: unknown;
  readinessProbe?: unknown;
}
interface PodSpec {
  hostNetwork?: boolean;
  automountServiceAccountToken?: boolean;
  securityContext?: { seccompProfile?: { type: string } };
  containers: Container[];
  initContainers?: Container[];
  volumes: { name: string; configMap?: { name: string }; hostPath?: { path: string; type: string } }[];
}

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  const files = ['namespace.yaml', 'front.yaml', 'back.yaml'];
  const all = files.flatMap((f) => k8sDocs(`kubernetes/${f}`));
  const configMaps = new Map(all.filter((d) => d.kind === 'ConfigMap').map((d) => [d.metadata.name, d]));

  it('parse, with apiVersion, kind, name and the mslb namespace on every object', () => {
    expect(all.length).toBeGreaterThanOrEqual(7);
    for (const d of all) {
      expect(d.apiVersion, JSON.stringify(d.metadata)).toMatch(/^(v1|apps\/v1|networking\.k8s\.io\/v1)$/);
      expect(d.kind).toMatch(/^(Namespace|ConfigMap|DaemonSet|Deployment|NetworkPolicy)$/);
      expect(d.metadata.name).toMatch(/^[a-z0-9-]+$/);
      if (d.kind !== 'Namespace') expect(d.metadata.namespace).toBe('mslb');
    }
    const kust = parseYaml(read('kubernetes/kustomization.yaml')) as { resources: string[] };
    expect(kust.resources.sort()).toEqual([...files].sort());
  });

  const workloads = all.filter((d) => d.kind === 'DaemonSet' || d.kind === 'Deployment') as (K8s & {
    spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
  })[];

  it('front: a DaemonSet with hostNetwork; backs: Deployments with their server in the same pod', () => {
    const front = workloads.filter((w) => w.kind === 'DaemonSet');
    expect(front).toHaveLength(1);
    expect(front[0]!.spec.template.spec.hostNetwork).toBe(true);
    const backs = workloads.filter((w) => w.kind === 'Deployment');
    expect(backs.length).toBe(2);
    for (const b of backs) {
      const names = b.spec.template.spec.containers.map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['mslb-back', 'server']));
    }
    for (const w of workloads) {
      for (const [k, v] of Object.entries(w.spec.selector.matchLabels)) expect(w.spec.template.metadata.labels[k], w.metadata.name).toBe(v);
    }
  });

  it('the mslb containers: non-root, capabilities drop ALL add NET_ADMIN only, the TUN device, probes', () => {
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      const c = pod.containers.find((x) => x.name.startsWith('mslb-'))!;
      expect(c, w.metadata.name).toBeDefined();
      const sc = c.securityContext!;
      expect(sc.runAsNonRoot).toBe(true);
      expect(sc.runAsUser).toBeGreaterThan(0);
      expect(sc.privileged ?? false).toBe(false);
      expect(sc.capabilities?.drop).toEqual(['ALL']);
      expect(sc.capabilities?.add).toEqual(['NET_ADMIN']);
      // no_new_privs would withhold the image's file capability from the non-root user.
      expect(sc.allowPrivilegeEscalation).toBe(true);
      expect(c.livenessProbe).toBeDefined();
      expect(c.readinessProbe).toBeDefined();
      const tun = pod.volumes.find((v) => v.hostPath?.path === '/dev/net/tun');
      expect(tun?.hostPath?.type).toBe('CharDevice');
      expect(c.volumeMounts?.some((m) => m.name === tun!.name && m.mountPath === '/dev/net/tun')).toBe(true);
    }
  });

  it('pods: seccomp RuntimeDefault, no service account token, images by version (never :latest)', () => {
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      expect(pod.securityContext?.seccompProfile?.type, w.metadata.name).toBe('RuntimeDefault');
      expect(pod.automountServiceAccountToken, w.metadata.name).toBe(false);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        expect(c.image, `${w.metadata.name}/${c.name}`).toMatch(/:[0-9][\w.-]*$|@sha256:[0-9a-f]{64}$/);
        if (c.image.startsWith('mslb-')) expect(c.image).toBe(`${c.image.split(':')[0]}:${version}`);
      }
    }
    const kust = parseYaml(read('kubernetes/kustomization.yaml')) as { images: { name: string; newTag: string }[] };
    for (const i of kust.images) expect(i.newTag, i.name).toBe(version);
    expect(read('README.md')).toMatch(/@sha256:/); // how to pin by digest
  });

  it('admin servers never on all addresses: the back on its pod IP, the front on its node IP (downward API)', () => {
    for (const w of workloads) {
      const c = w.spec.template.spec.containers.find((x) => x.name.startsWith('mslb-'))!;
      const env = new Map((c.env ?? []).map((e) => [e.name, e]));
      const listen = env.get('MSLB_ADMIN_LISTEN')?.value ?? '';
      const ipVar = /^\[\$\((\w+)\)\]:\d+$/.exec(listen)?.[1];
      expect(ipVar, `${w.metadata.name}: MSLB_ADMIN_LISTEN ${listen}`).toBeDefined();
      expect(env.get(ipVar!)?.valueFrom?.fieldRef?.fieldPath).toBe(w.kind === 'DaemonSet' ? 'status.hostIP' : 'status.podIP');
    }
    for (const cm of configMaps.values()) {
      for (const text of Object.values(cm.data ?? {})) {
        const listen = (parseYaml(text) as { admin?: { listen?: string } })?.admin?.listen;
        if (listen !== undefined) expect(listen, cm.metadata.name).not.toMatch(/^(\[::\]|0\.0\.0\.0|):/);
      }
    }
    // A NetworkPolicy lets only monitoring and the fabric reach the backs' admin port.
    const np = all.find((d) => d.kind === 'NetworkPolicy') as K8s & { spec: { podSelector: { matchLabels: Record<string, string> }; ingress: { from?: unknown[]; ports: { port: number }[] }[] } };
    expect(np).toBeDefined();
    expect(np.spec.podSelector.matchLabels['app.kubernetes.io/name']).toBe('mslb-back');
    const adminRules = np.spec.ingress.filter((r) => r.ports.some((p) => p.port === 9102));
    expect(adminRules.length).toBeGreaterThan(0);
    for (const r of adminRules) expect(r.from?.length ?? 0, 'the admin port has a from').toBeGreaterThan(0);
  });

  it('the privileged init container changes no rp_filter to 0 host-wide and leaves the TUN owned by root', () => {
    const front = workloads.find((w) => w.kind === 'DaemonSet')!;
    const init = front.spec.template.spec.initContainers!.find((c) => c.securityContext?.privileged)!;
    const script = (init.args ?? []).join(' ');
    expect(script).not.toMatch(/echo 0 > \/proc\/sys\/net\/ipv4\/conf\/(all|default)\/rp_filter/);
    expect(script).not.toMatch(/conf\/default\//);
    expect(script).toMatch(/tuntap add dev mslbf0 mode tun user 0;/);
    expect(script).not.toMatch(/user 10001|group 10001/);
  });

  it('ConfigMaps are mounted as directories (never subPath: those never update) and hold valid configs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mslb-k8s-'));
    try {
      for (const w of workloads) {
        const pod = w.spec.template.spec;
        const c = pod.containers.find((x) => x.name.startsWith('mslb-'))!;
        const mounts = new Map<string, string>(); // configMap name -> mount dir
        for (const m of c.volumeMounts ?? []) {
          const v = pod.volumes.find((x) => x.name === m.name);
          if (!v?.configMap) continue;
          expect(m.subPath, `${w.metadata.name} ${m.mountPath}`).toBeUndefined();
          expect(configMaps.has(v.configMap.name), v.configMap.name).toBe(true);
          mounts.set(v.configMap.name, m.mountPath);
        }
        // Lay the ConfigMaps out where the pod sees them (under a temp root) and load the config
        // named by MSLB_CONFIG with the service's own loader; the front's table comes along.
        const cfgPath = c.env?.find((e) => e.name === 'MSLB_CONFIG')?.value;
        expect(cfgPath, w.metadata.name).toBeTruthy();
        const rootDir = join(dir, w.metadata.name);
        const rewrite = (s: string) => s.replace(/\/etc\/mslb/g, join(rootDir, 'etc/mslb'));
        for (const [name, mountPath] of mounts) {
          for (const [key, content] of Object.entries(configMaps.get(name)!.data ?? {})) {
            const p = join(rootDir, mountPath, key);
            mkdirSync(join(rootDir, mountPath), { recursive: true });
            writeFileSync(p, rewrite(content));
          }
        }
        const file = join(rootDir, cfgPath!);
        expect(existsSync(file), `${cfgPath} is in a mounted ConfigMap`).toBe(true);
        const r = w.kind === 'DaemonSet' ? loadFrontConfig(file) : loadBackConfig(file);
        expect(r.errors, `${w.metadata.name}: ${JSON.stringify(r.errors)}`).toEqual([]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('compose file and Dockerfile', () => {
  const compose = parseYaml(read('compose.yaml'), { merge: true }) as {
    services: Record<string, { image?: string; cap_add?: string[]; cap_drop?: string[]; devices?: string[]; privileged?: boolean; volumes?: string[]; build?: { target: string } }>;
  };

  it('compose: a front, two backs, two servers; mslb services get NET_ADMIN and /dev/net/tun only', () => {
    const s = compose.services;
    expect(Object.keys(s)).toEqual(expect.arrayContaining(['front', 'back1', 'back2', 'server1', 'server2']));
    for (const name of ['front', 'back1', 'back2']) {
      const svc = s[name]!;
      expect(svc.cap_drop, name).toEqual(['ALL']);
      expect(svc.cap_add, name).toEqual(['NET_ADMIN']);
      expect(svc.devices, name).toEqual(['/dev/net/tun:/dev/net/tun']);
      expect(svc.privileged ?? false).toBe(false);
      expect(svc.build?.target).toBe(name === 'front' ? 'front' : 'back');
      for (const v of svc.volumes ?? []) {
        const src = v.split(':')[0]!;
        expect(existsSync(join(root, 'deploy', src)), `${name} mounts ${src}`).toBe(true);
      }
    }
  });

  it('compose: the example configs it mounts are valid', () => {
    expect(loadFrontConfig(deploy('compose/front/front.yaml')).errors).toEqual([]);
    expect(loadBackConfig(deploy('compose/back1.yaml')).errors).toEqual([]);
    expect(loadBackConfig(deploy('compose/back2.yaml')).errors).toEqual([]);
  });

  it('compose: no back admin server on all addresses (S is local there); images by version', () => {
    for (const b of ['back1', 'back2']) {
      const listen = loadBackConfig(deploy(`compose/${b}.yaml`)).config!.admin.listen;
      expect(listen, b).not.toMatch(/^(\[::\]|0\.0\.0\.0|):/);
    }
    for (const [name, svc] of Object.entries(compose.services)) {
      if (svc.image) expect(svc.image, name).toMatch(/:[0-9][\w.-]*$|@sha256:[0-9a-f]{64}$/);
    }
  });

  it('Dockerfile: multi-stage, front and back targets, non-root, tini, HEALTHCHECK, admin ports; COPY sources exist', () => {
    const df = read('Dockerfile');
    const stages = [...df.matchAll(/^FROM\s+(\S+)\s+AS\s+(\S+)/gm)].map((m) => ({ image: m[1]!, name: m[2]! }));
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime', 'front', 'back']);
    expect(stages[0]!.image).toMatch(/^node:\$\{NODE_VERSION\}-bookworm$/);
    expect(stages[1]!.image).toMatch(/-slim$/);
    expect(df).toMatch(/^USER 10001:10001$/m);
    expect(df).toMatch(/ENTRYPOINT \["\/usr\/bin\/tini", "--"/);
    expect(df.match(/^HEALTHCHECK .*healthcheck\.mjs/gm)).toHaveLength(2);
    expect(df).toMatch(/^EXPOSE 9101\/tcp$/m);
    expect(df).toMatch(/^EXPOSE 9102\/tcp$/m);
    expect(df).toMatch(/setcap cap_net_admin=ep \/usr\/local\/bin\/mslb-node/);
    for (const m of df.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)) {
      for (const src of m[1]!.split(/\s+/)) expect(existsSync(join(root, src)), `COPY ${src}`).toBe(true);
    }
  });

  it('Dockerfile: a supported Node.js LTS base (even major, 22 or later); the run example in its header mounts what exists', () => {
    const df = read('Dockerfile');
    const v = Number(/^ARG NODE_VERSION=(\d+)$/m.exec(df)?.[1]);
    expect(v).toBeGreaterThanOrEqual(22);
    expect(v % 2, 'an LTS line is an even major').toBe(0);
    const mounts = [...df.matchAll(/-v \$PWD\/(\S+?):/g)].map((m) => m[1]!);
    expect(mounts.length).toBeGreaterThan(0);
    for (const m of mounts) expect(existsSync(join(root, m)), `the header mounts ${m}`).toBe(true);
  });
});

describe('systemd units (deploy/systemd)', () => {
  for (const role of ['front', 'back']) {
    it(`mslb-${role}.service: dedicated user, CAP_NET_ADMIN bounding and ambient only, TUN device only`, () => {
      const u = read(`systemd/mslb-${role}.service`);
      const keys = (k: string) => [...u.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((m) => m[1]);
      expect(keys('User')).toEqual(['mslb']);
      expect(keys('CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN']);
      expect(keys('AmbientCapabilities')).toEqual(['CAP_NET_ADMIN']);
      expect(keys('DeviceAllow')).toEqual(['/dev/net/tun rw']);
      expect(keys('ProtectKernelTunables')).toEqual(['no']); // it writes /proc/sys/net
      expect(keys('ExecStart')[0]).toContain(`dist/${role}/main.js --config /etc/mslb/${role}.yaml`);
      expect(keys('KillSignal')).toEqual(['SIGTERM']);
      expect(keys('MemoryMax')[0]).toMatch(/^\d+[KMG]$/);
      expect(Number(keys('TasksMax')[0])).toBeGreaterThanOrEqual(64 + 16); // 64 queues' workers and Node's own threads
      expect(keys('ExecReload')).toEqual([`/usr/bin/node /opt/mslb/dist/cli/mslb.js reload --config /etc/mslb/${role}.yaml`]); // exits 1 when the edit is rejected
    });
  }
  it('the sysusers file creates the mslb user', () => {
    expect(read('systemd/mslb.sysusers.conf')).toMatch(/^u mslb /m);
  });
});
