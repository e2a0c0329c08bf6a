// Fuzz target: the whole FrontProcessor.process over the lab's compiled tables (translate, encap,
// mixed-family encap). Input and invariants: harness/process-check.ts.
// Control bit 6 (with a virtio header) adds the offloads: the GSO paths (segment slab, TAP, GRO).
import { processCheck } from '../harness/process-check.js';
import { frontSubjects, type Subject } from '../harness/processors.js';

const a = frontSubjects();
const b = frontSubjects();
const pairs: [Subject, Subject][] = a.map((s, i) => [s, b[i]]);

export function fuzz(data: Buffer): void {
  processCheck(data, pairs, 0x1e);
}
