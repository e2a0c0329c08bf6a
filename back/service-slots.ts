// The back's counter slot per service address (the `service` label), on the main thread. A slot is
// kept while the address is a service of the config in force, so a reload that keeps a service keeps
// its totals. A service a reload removes frees its slot (its series leaves /metrics); fresh slots are
// used first, and a freed one only when none is left, its counters then restarting from 0.
import { MAX_SERVICE_SLOTS } from '../shared/metrics/counter-layout.js';
import type { ServiceState } from '../shared/metrics/registry.js';

export class ServiceSlots {
  private readonly slots = new Map<string, number>();
  private readonly freed: number[] = [];
  private nextSlot = 0;

  constructor(
    /** A freed slot goes to another service: the registry bases its counters (resetServiceSlot). */
    private readonly onReuse: (slot: number) => void = () => undefined,
  ) {}

  /** The slot of a service address, assigning one to a new address. Throws when none is left. */
  readonly slotOf = (service: string): number => {
    let s = this.slots.get(service);
    if (s === undefined) {
      if (this.nextSlot < MAX_SERVICE_SLOTS) s = this.nextSlot++;
      else if (this.freed.length > 0) {
        s = this.freed.shift()!;
        this.onReuse(s);
      } else throw new Error(`more than ${MAX_SERVICE_SLOTS} distinct services between the config in force and the new one`);
      this.slots.set(service, s);
    }
    return s;
  };

  /**
   * The services of the config in force now (after a reload was applied, or to undo the slots a
   * rejected one assigned): every other address gives its slot back.
   */
  retain(services: Iterable<string>): void {
    const keep = new Set(services);
    for (const [name, s] of this.slots) {
      if (keep.has(name)) continue;
      this.slots.delete(name);
      this.freed.push(s);
    }
  }

  /** The `service` label's values: the services holding a slot, in slot order. */
  states(): ServiceState[] {
    return [...this.slots].map(([name, slot]) => ({ name, slot })).sort((a, b) => a.slot - b.slot);
  }
}
