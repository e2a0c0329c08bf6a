// HEALTHCHECK of the mslb images: GET /healthz on the service's admin address; exit 0 when it
// answers 200, 1 otherwise (within 2 s). The address is MSLB_HEALTH_URL if set, else admin.listen
// from MSLB_ADMIN_LISTEN or the config file MSLB_CONFIG (a wildcard listen address is asked on loopback).
//   node deploy/docker/healthcheck.mjs            (as the image's HEALTHCHECK does)
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

function healthUrl(env = process.env) {
  if (env.MSLB_HEALTH_URL) return env.MSLB_HEALTH_URL;
  let listen = env.MSLB_ADMIN_LISTEN;
  if (!listen && env.MSLB_CONFIG) listen = parse(readFileSync(env.MSLB_CONFIG, 'utf8'))?.admin?.listen;
  if (!listen) listen = env.MSLB_ROLE === 'back' ? '[::1]:9102' : '[::1]:9101';
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(String(listen).trim());
  if (!m) throw new Error(`cannot parse admin listen address "${listen}"`);
  let host = m[1] || '::1';
  if (host === '::') host = '::1';
  if (host === '0.0.0.0') host = '127.0.0.1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${m[2]}/healthz`;
}

try {
  const url = healthUrl();
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (res.status !== 200) {
    process.stderr.write(`unhealthy: ${url} answered ${res.status}\n`);
    process.exit(1);
  }
  process.exit(0);
} catch (e) {
  process.stderr.write(`unhealthy: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
