// A data plane that only remembers (libnetwork's null drivers): for LoadBalancer tests and for
// the sidecar's dry runs. It counts the difference the way the kernel data planes do, so a
// test sees what one change would cost. It checks every ApplyHint it is given against the
// difference it finds, so that the LoadBalancer's tests also test the hints it sends.
import type { ApplyHint, ApplyResult, DataPlane, VirtualService } from '../types.js';

export class MemoryDataPlane implements DataPlane {
  readonly name = 'memory' as const;
  #held = new Map<number, VirtualService>();
  /** Every apply, in order: tests assert on what was sent. */
  readonly applied: VirtualService[][] = [];
  /** Set to make the next apply fail (then cleared), as a refused transaction would. */
  failNext: Error | undefined;
  /** The last apply resolved: a hint is checked (after a failure the kernel ones ignore it). */
  #trusted = false;

  async apply(desired: readonly VirtualService[], hint?: ApplyHint): Promise<ApplyResult> {
    const trusted = this.#trusted;
    this.#trusted = false;
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    const want = new Map(desired.map((vs) => [vs.mark, structuredClone(vs)]));
    if (hint && trusted) this.#check(want, hint);
    const r: ApplyResult = { added: 0, changed: 0, removed: 0 };
    for (const [mark, vs] of want) {
      const old = this.#held.get(mark);
      if (!old) r.added += 1 + vs.backends.length;
      else {
        const before = new Map(old.backends.map((b) => [b.address, b.weight]));
        const after = new Map(vs.backends.map((b) => [b.address, b.weight]));
        const svcChanged = JSON.stringify({ ...old, backends: [] }) !== JSON.stringify({ ...vs, backends: [] });
        r.changed += svcChanged ? 1 : 0;
        for (const [a, w] of after) {
          if (!before.has(a)) r.added++;
          else if (before.get(a) !== w) r.changed++;
        }
        for (const a of before.keys()) if (!after.has(a)) r.removed++;
      }
    }
    for (const [mark, vs] of this.#held) if (!want.has(mark)) r.removed += 1 + vs.backends.length;
    this.#held = want;
    this.applied.push(structuredClone([...desired]));
    this.#trusted = true;
    return r;
  }

  /** Throws when `hint` leaves out a service that changed or went (a data plane trusting it would
   * leave that service as it was). */
  #check(want: Map<number, VirtualService>, hint: ApplyHint): void {
    const named = new Set(hint.changed.map((vs) => vs.mark));
    for (const [mark, vs] of want) {
      const old = this.#held.get(mark);
      if (!named.has(mark) && (!old || JSON.stringify(old) !== JSON.stringify(vs)))
        throw new Error(`ApplyHint: service mark ${mark} changed but is not named`);
    }
    for (const mark of this.#held.keys())
      if (!want.has(mark) && !hint.removed.includes(mark))
        throw new Error(`ApplyHint: service mark ${mark} went but is not named`);
  }

  async read(): Promise<VirtualService[]> {
    return [...this.#held.values()].map((vs) => structuredClone(vs)).sort((a, b) => a.mark - b.mark);
  }

  async reset(): Promise<void> {
    this.#held.clear();
  }

  async close(): Promise<void> {}
}
