// Renders docs/CONFIGURATION.md from the code that reads the files, so the reference cannot drift:
// the config keys, types, defaults, env variables and doc strings come from the convict schemas;
// the bounds from running the services' own validators on an out-of-range value; the table's keys
// from the table loader's "unknown key (expected ...)" answers. Only the prose about the table's
// keys lives here (the loader has no schema to hold it), and a key the loader accepts without a
// line here is listed as undocumented (the unit test refuses that).
import { frontConfigFromValue, frontSchema } from '../front/front-config.js';
import { backConfigFromValue, backSchema } from '../back/back-config.js';
import { validateTable } from '../front/table/table-loader.js';

/** Units the schemas do not carry (a schema entry's own `unit` wins). */
const UNITS: Record<string, string> = {
  'tun.mtu': 'bytes',
  'encap.mtu': 'bytes',
  'encap.hopLimit': 'hops',
  'flowTable.size': 'entries per worker',
  'flowTable.tcpTimeout': 'seconds',
  'flowTable.udpTimeout': 'seconds',
  'flowTable.otherTimeout': 'seconds',
  'icmp.ratePerSecond': 'errors per second',
  'icmp.burst': 'errors',
  'healthCheck.interval': 'seconds',
  'healthCheck.timeout': 'seconds',
  'healthCheck.rise': 'probes',
  'healthCheck.fall': 'probes',
  'healthCheck.servicePort': 'port',
};

interface Leaf {
  path: string;
  doc: string;
  format: unknown;
  default: unknown;
  env?: string;
  unit?: string;
}

function leaves(schema: Record<string, unknown>, prefix = ''): Leaf[] {
  const out: Leaf[] = [];
  for (const [k, v] of Object.entries(schema)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const s = v as Record<string, unknown>;
    if (s && typeof s === 'object' && 'default' in s) {
      out.push({ path, doc: String(s.doc ?? ''), format: s.format, default: s.default, env: s.env as string | undefined, unit: s.unit as string | undefined });
    } else if (s && typeof s === 'object') {
      out.push(...leaves(s, path));
    }
  }
  return out;
}

function typeOf(format: unknown): string {
  if (format === String) return 'string';
  if (format === Boolean) return 'boolean';
  if (format === Number) return 'number';
  if (Array.isArray(format)) return `one of ${format.map((f) => `\`${String(f)}\``).join(', ')}`;
  switch (format) {
    case 'int-range': return 'integer';
    case 'nat': return 'integer ≥ 0';
    case 'int': return 'integer';
    case 'port': return 'port';
    case 'string-list': return 'list of strings';
    case 'object-list': return 'list of mappings';
    default: return typeof format === 'string' ? format : typeof format === 'function' ? (format as { name?: string }).name || 'custom' : 'custom';
  }
}

/** How an MSLB_* variable's text becomes the key's value. */
function envSyntax(format: unknown): string {
  if (format === Boolean) return ' (`true` / `false`)';
  if (format === 'string-list') return ' (comma-separated)';
  if (format === 'object-list') return ' (JSON)';
  return '';
}

function show(v: unknown): string {
  return `\`${JSON.stringify(v)}\``;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Runs `fn` with no MSLB_* variables set: they override the document and would hide the probe. */
function withoutEnv<T>(fn: () => T): T {
  const saved = Object.entries(process.env).filter(([k]) => k.startsWith('MSLB_'));
  for (const [k] of saved) delete process.env[k];
  try {
    return fn();
  } finally {
    for (const [k, v] of saved) process.env[k] = v;
  }
}

function nest(path: string, value: unknown): Record<string, unknown> {
  const parts = path.split('.');
  let v: unknown = value;
  for (let i = parts.length - 1; i >= 0; i--) v = { [parts[i]!]: v };
  return v as Record<string, unknown>;
}

type Validate = (value: unknown, file: string) => { errors: { entry: string; reason: string }[] };

/** The bounds the validator enforces on a key, read from its answer to a value far out of range. */
function bounds(validate: Validate, path: string): string {
  for (const probe of [1e15, -1e15]) {
    const { errors } = withoutEnv(() => validate(nest(path, probe), 'probe.yaml'));
    const e = errors.find((x) => x.entry === path);
    const m = e && /from (-?[\d.]+\s*\w*) to (-?[\d.]+\s*\w*)/.exec(e.reason);
    if (m) return `${m[1]} – ${m[2]}`;
  }
  return '';
}

function configTable(schema: Record<string, unknown>, validate: Validate): string {
  const rows = ['| key | type | default | unit / bounds | env | what |', '|---|---|---|---|---|---|'];
  for (const l of leaves(schema)) {
    const numeric = !(l.format === String || l.format === Boolean || Array.isArray(l.format) || l.format === 'string-list' || l.format === 'object-list');
    const b = numeric ? bounds(validate, l.path) : '';
    const unit = [l.unit ?? UNITS[l.path] ?? '', b].filter(Boolean).join(', ');
    const env = l.env ? `\`${l.env}\`${envSyntax(l.format)}` : '';
    rows.push(`| \`${l.path}\` | ${cell(typeOf(l.format))} | ${show(l.default)} | ${cell(unit)} | ${env} | ${cell(l.doc)} |`);
  }
  return rows.join('\n');
}

/** What each table key means: the one part of this reference written by hand. */
const TABLE_DOCS: Record<string, Record<string, string>> = {
  '': {
    backs: 'mapping name → back. Names: letters, digits, `_ . -`, up to 63. The `backend` label of the metrics.',
    pools: 'mapping name → pool (optional). A pool name must not also be a back name.',
    routes: 'list of routes, longest prefix wins. A source no route covers is dropped (`mslb_drops_total{reason="no_route"}`).',
  },
  back: {
    address: "the back's address B (translate: same family as the services it serves; encap: any family). Give `address` or `addresses`.",
    addresses: 'mapping service address → back address; needed in translate mode when the front balances several services of one family (the back restores S from the address the packet arrives on).',
    mode: '`translate` or `encap`; default: the front config\'s `mode`.',
    serverId: 'IPv6 address: the LBSP server segment that names this back (default: its address).',
    weight: 'its share in every pool it is a member of (integer, default 1).',
    healthCheck: 'probes of this back (below); a back without one counts as up.',
  },
  healthCheck: {
    url: "HTTP(S) GET, up on a 2xx answer (e.g. the back's `/readyz` over the fabric).",
    servicePort: 'TCP connect to the service S on this port through the back (a dead server behind a live back is seen too; needs `healthCheck.probePrefix6/4` in the front config).',
    interval: 'between probes; default the front config\'s `healthCheck.interval`.',
    timeout: 'per probe; default the front config\'s `healthCheck.timeout`.',
    rise: 'successes in a row that mark the back up; default the front config\'s.',
    fall: 'failures in a row that mark the back down; default the front config\'s.',
    udp: 'UDP datagram to the service S through the back, for every service it carries (below); needs `healthCheck.probePrefix6/4`.',
    dns: 'DNS query to the service S through the back (below); needs `healthCheck.probePrefix6/4`.',
    http: 'HTTP GET of the service S through the back, with an expected status and body (below); needs `healthCheck.probePrefix6/4`.',
  },
  udp: {
    port: 'the service port (required).',
    send: 'datagram to send, as text (default `mslb-health` and a newline).',
    sendHex: 'datagram to send, as hex bytes (`"0d0a"`, `":"` and spaces allowed); instead of `send`. At most 512 bytes.',
    expect: 'text the reply must contain; default: any reply is good.',
    expectHex: 'bytes the reply must contain, as hex; instead of `expect`.',
  },
  dns: {
    port: 'the service port (default 53).',
    name: 'the name asked for (required), e.g. `www.example.com`.',
    type: '`A` (default), `AAAA`, `NS`, `CNAME`, `SOA`, `PTR`, `MX`, `TXT`, `SRV`, `ANY`, or a type number.',
    rcode: 'the rcode that counts as up (`NOERROR`, `NXDOMAIN`, ... or 0-15); default: NOERROR with at least one answer.',
  },
  http: {
    port: 'the service port (default 80).',
    path: 'path and query of the GET (default `/`).',
    host: 'Host header (default the service address).',
    status: 'accepted status: `200`, a list `[200, 204]` or a range `"200-299"` (default `"200-399"`).',
    body: 'text the body must contain (the first 64 KiB are read); default: not checked.',
  },
  pool: {
    members: 'list of back names (at least one, each once).',
    key: '`source` (default: the client key), `label` or `source+label` (the IPv6 flow label when non-zero, else the client key).',
    failClosed: '`true`: drop (`backend_down`) when no member is up; default `false`: send to all configured members (fail-open).',
  },
  member: {
    back: 'the back\'s name.',
    weight: 'its share in this pool (default: the back\'s own `weight`, else 1); `0` drains it: no new key or flow goes to it, flows already pinned to it stay until they end or idle out.',
  },
  route: {
    source: 'client prefix (ADDRESS/LENGTH, no host bits set); matched against the client key (the LBSP client segment when present, else the IP source).',
    to: 'a back name or a pool name.',
    service: 'optional: the route applies to this service address only (default: every service of its family).',
  },
};

/** Where each part of the table is probed for its keys: an object with one unknown key at that place. */
const TABLE_PROBES: { part: string; title: string; value: unknown; entry: string }[] = [
  { part: '', title: 'Top level', value: { zz_probe: 1 }, entry: 'zz_probe' },
  { part: 'back', title: '`backs.NAME`', value: { backs: { b: { zz_probe: 1 } } }, entry: 'backs.b.zz_probe' },
  { part: 'healthCheck', title: '`backs.NAME.healthCheck`', value: { backs: { b: { address: '2001:db8::1', healthCheck: { zz_probe: 1 } } } }, entry: 'backs.b.healthCheck.zz_probe' },
  { part: 'udp', title: '`backs.NAME.healthCheck.udp`', value: { backs: { b: { address: '2001:db8::1', healthCheck: { udp: { zz_probe: 1 } } } } }, entry: 'backs.b.healthCheck.udp.zz_probe' },
  { part: 'dns', title: '`backs.NAME.healthCheck.dns`', value: { backs: { b: { address: '2001:db8::1', healthCheck: { dns: { zz_probe: 1 } } } } }, entry: 'backs.b.healthCheck.dns.zz_probe' },
  { part: 'http', title: '`backs.NAME.healthCheck.http`', value: { backs: { b: { address: '2001:db8::1', healthCheck: { http: { zz_probe: 1 } } } } }, entry: 'backs.b.healthCheck.http.zz_probe' },
  { part: 'pool', title: '`pools.NAME`', value: { pools: { p: { zz_probe: 1 } } }, entry: 'pools.p.zz_probe' },
  { part: 'member', title: '`pools.NAME.members[i]` (a mapping)', value: { backs: { b: { address: '2001:db8::1' } }, pools: { p: { members: [{ zz_probe: 1 }] } } }, entry: 'pools.p.members[0].zz_probe' },
  { part: 'route', title: '`routes[i]`', value: { routes: [{ zz_probe: 1 }] }, entry: 'routes[0].zz_probe' },
];

const TABLE_CTX = { services: ['2001:db8:5::80', '192.0.2.80'], mode: 'translate' as const, encap: { source: 'service', source4: '', source6: '' } };

/** The keys the table loader accepts at each place, as it names them. */
export function tableKeys(): { part: string; title: string; keys: string[] }[] {
  const out: { part: string; title: string; keys: string[] }[] = [];
  for (const p of TABLE_PROBES) {
    const { errors } = validateTable(p.value, 'probe.yaml', TABLE_CTX);
    const e = errors.find((x) => x.entry === p.entry);
    const m = e && /expected ([^)]+)\)/.exec(e.reason);
    if (m) out.push({ part: p.part, title: p.title, keys: m[1]!.split(/,\s*/) });
  }
  return out;
}

/** Table keys the loader accepts that TABLE_DOCS does not describe. */
export function undocumentedTableKeys(): string[] {
  return tableKeys().flatMap((t) => t.keys.filter((k) => !TABLE_DOCS[t.part]?.[k]).map((k) => `${t.title} ${k}`));
}

function tableBounds(part: string, key: string): string {
  const value =
    part === 'healthCheck' ? { backs: { b: { address: '2001:db8::1', healthCheck: { [key]: 1e15 } } } }
    : part === 'back' ? { backs: { b: { address: '2001:db8::1', [key]: 1e15 } } }
    : part === 'member' ? { backs: { b: { address: '2001:db8::1' } }, pools: { p: { members: [{ back: 'b', [key]: 1e15 }] } } }
    : undefined;
  if (!value) return '';
  const { errors } = validateTable(value, 'probe.yaml', TABLE_CTX);
  const m = errors.map((e) => /from (-?[\d.]+\s*\w*) to (-?[\d.]+\s*\w*)/.exec(e.reason)).find(Boolean);
  return m ? `${m[1]} – ${m[2]}` : '';
}

function tableSection(): string {
  const parts: string[] = [];
  const all = tableKeys();
  const memberMappings = all.some((t) => t.part === 'member');
  for (const t of all) {
    const rows = ['| key | unit / bounds | what |', '|---|---|---|'];
    for (const k of t.keys) {
      const unit = [UNITS[`${t.part}.${k}`] ?? '', tableBounds(t.part, k)].filter(Boolean).join(', ');
      let what = TABLE_DOCS[t.part]?.[k] ?? 'UNDOCUMENTED: describe it in scripts/config-docs.ts';
      if (t.part === 'pool' && k === 'members' && memberMappings) what = 'list of members (at least one, each back once): a back name, or a mapping `{ back, weight }` (below).';
      rows.push(`| \`${k}\` | ${cell(unit)} | ${cell(what)} |`);
    }
    parts.push(`### ${t.title}\n\n${rows.join('\n')}`);
  }
  return parts.join('\n\n');
}

export const REGENERATE = 'npm run docs:config';

/** The whole of docs/CONFIGURATION.md. */
export function renderConfigDocs(): string {
  return `<!-- Generated by scripts/gen-config-docs.ts from the schemas in front/front-config.ts and
     back/back-config.ts and the loader in front/table/table-loader.ts. Do not edit: run
     \`${REGENERATE}\`. test/unit/config-docs.test.ts fails when this file is stale. -->
# Configuration reference

Three files: the front's config (\`mslb-front --config FILE\`), the table it names (\`table:\`), and
the back's config (\`mslb-back --config FILE\`). All three are YAML or JSON; \`mslb check FILE\`
validates any of them (a front config with its table) and prints one line per problem,
\`FILE: ENTRY: REASON\`. Worked examples: \`deploy/examples/\` and \`deploy/lab/\`.

- Every key is optional and has the default below, except what the service cannot guess (the
  front's \`services\`, the back's \`addresses\`). Unknown keys are errors.
- Every key can be overridden by its \`MSLB_*\` environment variable, which wins over the file;
  lists are comma-separated, lists of mappings are JSON.
- Relative paths (the front's \`table\`) resolve against the config file's directory.
- "unit / bounds" gives the unit and the range the service accepts (out of range is an error).

## Front config

${configTable(frontSchema as unknown as Record<string, unknown>, frontConfigFromValue as Validate)}

## Table file

The translation table of a front, the draft's Figure 7 with names: routes from client source
prefixes to a back or a pool, the backs, the pools. It is reloaded when the file changes and on
SIGHUP; an edit that does not validate is rejected (one line per problem, naming the file and the
entry) and the previous table keeps serving (\`docs/OPERATIONS.md\`).

\`\`\`yaml
backs:
  b1: { address: 2001:db8:b::1 }                  # mode defaults to the front's
  b2: { address: 2001:db8:b::2, mode: encap, serverId: 2001:db8:5::2 }
  b3:
    addresses: { "2001:db8:5::80": 2001:db8:b::3, "192.0.2.80": 198.51.100.3 }
    healthCheck: { url: "http://[2001:db8:e1::3]:9102/readyz", servicePort: 80, fall: 2 }
pools:
  web: { members: [b1, b2], key: label }          # key: source | label | source+label
routes:
  - { source: 2001:db8:c1::/48, to: b1 }
  - { source: 198.51.100.0/24, to: b3 }
  - { source: ::/0, to: web }                     # a route names a back or a pool
  - { source: 0.0.0.0/0, to: b3, service: 192.0.2.80 }
\`\`\`

${tableSection()}

## Back config

${configTable(backSchema as unknown as Record<string, unknown>, backConfigFromValue as Validate)}
`;
}
