// CPU and memory of processes and of the host's softirq time, from /proc (bench only).
import { readFileSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

/** utime + stime of a process (all its threads), in seconds; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS; // fields 14 and 15 of stat(5)
  } catch {
    return NaN;
  }
}

/** Resident set size in MiB (VmRSS), NaN when the process is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Host-wide softirq and busy (non-idle) time in seconds, summed over CPUs. */
export function hostTimes(): { softirq: number; busy: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = line;
  return { softirq: softirq! / TICKS, busy: (user! + nice! + system! + irq! + softirq! + steal!) / TICKS };
}

/** CPU use over an interval, as % of one core, per named process plus host softirq/busy. */
export class CpuWindow {
  private readonly t0 = process.hrtime.bigint();
  private readonly c0: Map<string, number>;
  private readonly h0 = hostTimes();

  constructor(private readonly pids: Record<string, number>) {
    this.c0 = new Map(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
  }

  end(): { procs: Record<string, number>; softirq: number; busy: number } {
    const wall = Number(process.hrtime.bigint() - this.t0) / 1e9;
    const h = hostTimes();
    const procs: Record<string, number> = {};
    for (const [k, p] of Object.entries(this.pids)) procs[k] = (100 * (cpuSeconds(p) - this.c0.get(k)!)) / wall;
    return { procs, softirq: (100 * (h.softirq - this.h0.softirq)) / wall, busy: (100 * (h.busy - this.h0.busy)) / wall };
  }
}
