// Where a command reaches a service's admin server: admin.listen as written in its config. A
// wildcard listener (":9101", "0.0.0.0:9101", "[::]:9101") is reached on loopback, which is also
// the only peer that may ask for a reload.
import { parseListen } from './admin-server.js';

export function adminUrl(listen: string, path: string): string {
  const a = parseListen(listen);
  let host = a.host;
  if (host === undefined || host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  const h = host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${a.port}${path}`;
}
