// Every command of deploy/README.md's ```sh blocks, run here where it can be: file installs into a
// temporary root laid out like a Debian host (/etc, /usr/local/sbin), systemd-sysusers --root,
// mslb check on the installed config, bird -p, promtool, docker-compose config, kubectl kustomize.
// What needs an engine, a cluster, systemd as PID 1 or the host's kernel is not run; each such
// command has its reason here and, where one exists, the check that stands in for it. A command
// this file does not know fails the test, so a new README command cannot go unchecked.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'deploy', 'README.md'), 'utf8');

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}
function sh(cmd: string): { code: number; out: string } {
  const r = spawnSync('sh', ['-c', cmd], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** The commands of the ```sh blocks: comments dropped, continuation lines joined. */
function readmeCommands(text: string): string[] {
  const out: string[] = [];
  for (const [, body] of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let acc = '';
    for (const raw of body!.split('\n')) {
      const line = raw.replace(/\s+#\s.*$/, '').trimEnd();
      if (!line.trim()) continue;
      if (line.endsWith('\\')) { acc += line.slice(0, -1) + ' '; continue; }
      out.push((acc + line).replace(/\s+/g, ' ').trim());
      acc = '';
    }
  }
  return out;
}

type Step = { kind: 'ran'; part: string } | { kind: 'not here'; part: string; why: string } | { kind: 'unknown'; part: string };

/** Absolute host paths of the README moved under the temporary root; $PWD is the repository. */
function reroot(part: string, tmp: string): string {
  return part
    .replace(/(^|\s)\/(etc|usr\/local)\//g, `$1${tmp}/$2/`)
    .replace(/\$PWD/g, root);
}

function step(part: string, tmp: string): Step {
  const [cmd, ...args] = part.split(' ');
  const a = args.join(' ');
  const run = (c: string): Step => {
    const r = sh(c);
    expect(r.code, `${part}\n  ran as: ${c}\n${r.out}`).toBe(0);
    return { kind: 'ran', part };
  };
  switch (cmd) {
    case 'install':
    case 'mv':
      return run(reroot(part, tmp));
    case 'cp':
      if (a.startsWith('-r <repo>')) return { kind: 'not here', part, why: 'copies this repository to /opt/mslb: the test runs in the repository itself' };
      return run(reroot(part, tmp));
    case 'cd':
      return { kind: 'not here', part, why: 'the repository copy; the test runs in the repository' };
    case 'npm':
      return { kind: 'not here', part, why: 'npm ci is what scripts/setup.sh (and so .ci/run) runs; dist/ and the addon here come from it' };
    case 'systemd-sysusers': {
      if (!has('systemd-sysusers')) return { kind: 'not here', part, why: 'systemd-sysusers is not installed' };
      run(`systemd-sysusers --root=${tmp}`);
      expect(readFileSync(join(tmp, 'etc', 'passwd'), 'utf8')).toMatch(/^mslb:x:\d+:\d+:/m);
      return { kind: 'ran', part };
    }
    case 'modprobe':
      return { kind: 'not here', part, why: 'loads a module into the host kernel (the test checks the modules-load file names it)' };
    case 'node':
      return run(reroot(part, tmp));
    case 'systemctl': {
      const unit = args[args.length - 1]!;
      const file = join(tmp, 'etc', 'systemd', 'system', `${unit}.service`);
      if (has('systemd-analyze') && existsSync(file)) {
        const r = sh(`systemd-analyze verify --man=no ${file}`);
        // The host lacks /opt/mslb's user and node path; the unit's own syntax is what is checked.
        const problems = r.out.split('\n').filter((l) => l.trim() && !/not executable|No such file|Failed to resolve user|does not exist/.test(l));
        expect(problems, `${file}: ${r.out}`).toEqual([]);
      }
      return { kind: 'not here', part, why: 'no systemd as PID 1 here; the installed unit passes systemd-analyze verify instead' };
    }
    case 'bird':
      if (!has('bird')) return { kind: 'not here', part, why: 'bird is not installed' };
      return run(part);
    case 'promtool':
      if (!has('promtool')) return { kind: 'not here', part, why: 'promtool is not installed' };
      return run(part);
    case 'docker-compose':
      if (!has('docker-compose')) return { kind: 'not here', part, why: 'docker-compose is not installed' };
      return run(part);
    case 'docker': {
      const vol = /-v (\S+?):\/etc\/mslb/.exec(reroot(part, tmp));
      if (vol) {
        // What the container would mount must be there and hold a valid front config.
        expect(existsSync(join(vol[1]!, 'front.yaml')), `${vol[1]}/front.yaml`).toBe(true);
        run(`node dist/cli/mslb.js check ${join(vol[1]!, 'front.yaml')}`);
      }
      return { kind: 'not here', part, why: 'no Docker engine here (docker-compose config and the Dockerfile unit test stand in)' };
    }
    case 'kubectl':
      if (args[0] === 'kustomize') return has('kubectl') ? run(part) : { kind: 'not here', part, why: 'kubectl is not installed' };
      return { kind: 'not here', part, why: 'no Kubernetes cluster here (kubectl kustomize builds the same manifests)' };
    default:
      return { kind: 'unknown', part };
  }
}

describe('deploy/README.md commands', () => {
  const commands = readmeCommands(readme);

  it('are found (the sh blocks of every section)', () => {
    expect(commands.length).toBeGreaterThanOrEqual(20);
    for (const c of ['install -d /etc/mslb', 'docker build', 'kubectl apply -k deploy/kubernetes', 'promtool test rules', 'bird -p']) {
      expect(commands.some((x) => x.includes(c)), c).toBe(true);
    }
  });

  it('run here where they can, in order, against a temporary root', () => {
    expect(existsSync(join(root, 'dist', 'cli', 'mslb.js')), 'dist/ is built (npm run build)').toBe(true);
    const tmp = mkdtempSync(join(tmpdir(), 'mslb-deploy-readme-'));
    // What a Debian host has before the README's first command.
    for (const d of ['etc/sysusers.d', 'etc/modules-load.d', 'etc/systemd/system', 'etc/bird', 'usr/local/sbin']) mkdirSync(join(tmp, d), { recursive: true });
    try {
      const steps: Step[] = [];
      for (const c of commands) for (const part of c.split(' && ')) steps.push(step(part.trim(), tmp));
      const unknown = steps.filter((s) => s.kind === 'unknown').map((s) => s.part);
      expect(unknown, 'deploy/README.md commands test/e2e/deploy-readme.test.ts does not know how to run: add a case').toEqual([]);
      const ran = steps.filter((s) => s.kind === 'ran');
      const notHere = steps.filter((s): s is Extract<Step, { kind: 'not here' }> => s.kind === 'not here');
      console.log(`deploy/README.md: ${ran.length} commands run, ${notHere.length} not here:\n${notHere.map((s) => `  ${s.part}\n    -> ${s.why}`).join('\n')}`);
      expect(ran.length).toBeGreaterThanOrEqual(10);
      // The installs landed where the units and the services look for them.
      for (const f of ['etc/mslb/front.yaml', 'etc/mslb/table.yaml', 'etc/systemd/system/mslb-front.service', 'etc/sysusers.d/mslb.conf', 'etc/bird/bird.conf', 'usr/local/sbin/mslb-bird-watch']) {
        expect(existsSync(join(tmp, f)), f).toBe(true);
      }
      expect(readFileSync(join(tmp, 'etc/modules-load.d/mslb.conf'), 'utf8')).toMatch(/^tun$/m);
      if (has('bird')) expect(sh(`bird -p -c ${join(tmp, 'etc/bird/bird.conf')}`).code, 'the installed bird.conf parses').toBe(0);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('the reading of the README can fail: a path that does not exist makes its command fail', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'mslb-deploy-readme-'));
    try {
      mkdirSync(join(tmp, 'etc', 'mslb'), { recursive: true });
      expect(() => step('cp examples/front.yaml examples/table.yaml /etc/mslb/', tmp)).toThrow();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
