// Fuzz target: the whole BackProcessor.process over the lab back's config (auto mode) and a config
// with every address mode. Input and invariants: harness/process-check.ts.
// Control bit 6 (with a virtio header) adds the offloads: the GSO paths (segment slab, TAP, GRO).
import { processCheck } from '../harness/process-check.js';
import { backSubjects, type Subject } from '../harness/processors.js';

const a = backSubjects();
const b = backSubjects();
const pairs: [Subject, Subject][] = a.map((s, i) => [s, b[i]]);

export function fuzz(data: Buffer): void {
  processCheck(data, pairs, 0x1e);
}
