/** A small typed event emitter: event names and listener arguments come from one map. */

/** Event name → listener argument tuple. */
export type EventMap<E> = { [K in keyof E]: unknown[] };
export type Listener<A extends unknown[]> = (...args: A) => void;

type AnyListener = (...args: unknown[]) => void;

export class Emitter<E extends EventMap<E>> {
  readonly #listeners = new Map<keyof E, Set<AnyListener>>();

  /** Adds a listener; returns a function removing it. */
  on<K extends keyof E>(type: K, fn: Listener<E[K]>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(fn as unknown as AnyListener);
    return () => this.off(type, fn);
  }

  /** Adds a listener called at most once. */
  once<K extends keyof E>(type: K, fn: Listener<E[K]>): () => void {
    const off = this.on(type, (...args: E[K]) => {
      off();
      fn(...args);
    });
    return off;
  }

  off<K extends keyof E>(type: K, fn: Listener<E[K]>): void {
    this.#listeners.get(type)?.delete(fn as unknown as AnyListener);
  }

  /**
   * Calls every listener of `type`. A listener that throws does not stop the others or the client: the
   * error is rethrown on a fresh task, where the host reports it (console, uncaughtException).
   */
  emit<K extends keyof E>(type: K, ...args: E[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}
