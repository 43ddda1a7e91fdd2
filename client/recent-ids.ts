/** A bounded set of recently seen ids (insertion order; the oldest is forgotten first). */
export class RecentIds {
  readonly #ids = new Set<number>();
  constructor(private readonly capacity: number) {}

  /** Records `id`; returns false when it was already recorded. */
  add(id: number): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.capacity) {
      const oldest = this.#ids.values().next();
      if (!oldest.done) this.#ids.delete(oldest.value);
    }
    return true;
  }
}
