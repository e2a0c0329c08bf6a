// A lab service process (mslb-front / mslb-back started inside a namespace): its log tail, the
// wait until its admin /readyz answers 200, and a bounded stop. Shared by every lab variant.
import type { ChildProcess } from 'node:child_process';
import { waitFor } from './netns.js';

/** Keep the last `max` output chunks of a process (for reports when a test fails). */
export function keepLogTail(proc: ChildProcess, max: number): string[] {
  const log: string[] = [];
  const keep = (d: Buffer): void => {
    log.push(d.toString());
    if (log.length > max) log.splice(0, log.length - max);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  return log;
}

/** Poll `readyz()` until it says ready; fails at once if the process exits first. */
export async function waitServiceReady(name: string, proc: ChildProcess, readyz: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before ready`);
      }
      return readyz();
    },
    timeoutMs,
    `${name} /readyz`,
  );
}

/** SIGTERM and wait for the exit, SIGKILL after graceMs; returns the exit code. */
export async function stopServiceProcess(p: ChildProcess, graceMs: number): Promise<number | null> {
  if (p.exitCode === null && p.signalCode === null) {
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }
  return p.exitCode;
}
