// Set-up shared by the bulk-upload e2e files (offloads, UDP-tunnel segmentation): a random upload
// file with its SHA-256, and the front-back links raised to a tunnel-sized MTU.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './lab.js';

/** A file of `bytes` random bytes in the lab's work directory, and the digest the server must report. */
export function writeUploadFile(lab: Lab, bytes: number): { file: string; sha: string } {
  const data = randomBytes(bytes);
  const file = join(lab.workDir, 'upload.bin');
  writeFileSync(file, data);
  return { file, sha: createHash('sha256').update(data).digest('hex') };
}

/** Both ends of each front-back link and each back's TUN at `mtu` (room for an outer header). */
export function setBackLinksMtu(lab: Lab, mtu: number): void {
  for (const b of ['back1', 'back2'] as const) {
    const l = lab.topo.linkOf(`${b}-link`);
    lab.set.ip(l.near.ns, `link set dev ${l.near.iface} mtu ${mtu}`);
    lab.set.ip(l.far.ns, `link set dev ${l.far.iface} mtu ${mtu}`);
    lab.set.ip(l.far.ns, `link set dev mslbb0 mtu ${mtu}`);
  }
}
