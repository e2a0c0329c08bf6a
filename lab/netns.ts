// Network-namespace primitives for root tests: uniquely named namespaces, commands run inside
// them, child processes tracked, and one cleanup that removes everything even when a test fails.
// Lives under lab/ because the lab (compiled into dist/) and the e2e tests share it; test/helpers/netns.ts
// re-exports it.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Run a command on the host; throws with stderr on failure. */
export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 30_000,
    maxBuffer: 256 << 20, // tshark over a multi-MB capture prints more than the 1 MB default
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export class NetnsSet {
  /** Short random tag so parallel runs and leftovers never collide. */
  readonly tag = randomBytes(3).toString('hex');
  private readonly names: string[] = [];
  private readonly procs: ChildProcess[] = [];

  /** Create namespace `mslb-<role>-<tag>` with lo up; returns its name. */
  add(role: string): string {
    const name = `mslb-${role}-${this.tag}`;
    sh('ip', ['netns', 'add', name]);
    this.names.push(name);
    this.exec(name, 'ip', ['link', 'set', 'lo', 'up']);
    return name;
  }

  /** Namespaces created so far (for checks that cleanup removed them). */
  get namespaces(): readonly string[] {
    return this.names;
  }

  /** Processes started by spawn() and not yet cleaned up. */
  get processes(): readonly ChildProcess[] {
    return this.procs;
  }

  /** Run a command inside a namespace and return stdout. */
  exec(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** Like exec() but does not block the event loop; never rejects: returns code, stdout, stderr. */
  run(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return runAsync('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** `ip` inside a namespace: nsIp(ns, 'addr add 2001:db8::1/64 dev x'). */
  ip(ns: string, line: string): string {
    return sh('ip', ['-n', ns, ...line.split(/\s+/).filter(Boolean)]);
  }

  /** Start a long-running process inside a namespace; it is killed by cleanup(). */
  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.push(p);
    return p;
  }

  /** veth pair between two namespaces. */
  veth(nsA: string, ifA: string, nsB: string, ifB: string): void {
    sh('ip', ['link', 'add', `${ifA}`, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    this.ip(nsA, `link set ${ifA} up`);
    this.ip(nsB, `link set ${ifB} up`);
  }

  sysctl(ns: string, key: string, value: string | number): void {
    this.exec(ns, 'sysctl', ['-qw', `${key}=${value}`]);
  }

  /** Kill tracked processes (SIGTERM, then SIGKILL after graceMs) and delete the namespaces. */
  async cleanup(graceMs = 2000): Promise<void> {
    const alive = this.procs.filter((p) => p.exitCode === null && p.signalCode === null);
    for (const p of alive) p.kill('SIGTERM');
    const deadline = Date.now() + graceMs;
    for (const p of alive) {
      while (p.exitCode === null && p.signalCode === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    // Anything else still running inside our namespaces (e.g. children of `ip netns exec`).
    for (const ns of this.names) {
      try {
        const pids = sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      } catch {
        /* namespace already gone */
      }
    }
    for (const ns of this.names.reverse()) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
    this.names.length = 0;
    this.procs.length = 0;
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command asynchronously, bounded by timeoutMs (killed with SIGKILL after it). */
export function runAsync(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? `\n${err.message}` : '') });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Namespaces whose name starts with `prefix` (default: every mslb one), from `ip netns list`. */
export function listNetns(prefix = 'mslb-'): string[] {
  return sh('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/** Resolve once a child's stdout or stderr matches `re`; reject if it exits first or after timeoutMs. */
export function waitForOutput(child: ChildProcess, re: RegExp, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const done = (err?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(seen);
    };
    const onData = (d: Buffer): void => {
      seen += d.toString();
      if (re.test(seen)) done();
    };
    const onExit = (code: number | null): void => done(new Error(`${what} exited (${code}) before ready: ${seen.slice(-500)}`));
    const timer = setTimeout(() => done(new Error(`${what} not ready after ${timeoutMs} ms: ${seen.slice(-500)}`)), timeoutMs);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Resolve when `predicate` is true, polling; rejects after timeoutMs. Bounded by design. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
