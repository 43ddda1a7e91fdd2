/**
 * Where the client stands in the event log: the cursor it resumes from. Every frame that carries a
 * cursor moves it forward, except while a RESYNC's reload is outstanding: then the newest position is
 * held aside and adopted only once the app's onResync has succeeded. Until then the cursor stays where
 * the gap began, so a failed reload followed by a drop resumes from there and is told RESYNC again,
 * instead of skipping what was never reloaded.
 */
export class Position {
  #cursor: string | undefined;
  /** The newest position seen since a RESYNC whose reload has not succeeded yet. */
  #pending: string | undefined;
  /** Counts RESYNCs: only the reload answering the latest one may adopt the position. */
  #resyncs = 0;

  constructor(cursor: string | undefined) {
    this.#cursor = cursor;
  }

  get cursor(): string | undefined {
    return this.#cursor;
  }

  /** The server's starting position (CONNECTED), when the client has none of its own. */
  startAt(cursor: string): void {
    this.#cursor ??= cursor;
  }

  advance(cursor: string): void {
    if (this.#pending !== undefined) this.#pending = cursor;
    else this.#cursor = cursor;
  }

  /**
   * A RESYNC to `cursor`. Without a reload to wait for it is adopted at once; with one, it is held and
   * the returned function adopts the newest held position (call it when the reload has succeeded).
   */
  resync(cursor: string | undefined, reloads: boolean): () => void {
    if (!reloads) {
      this.#cursor = cursor;
      return () => {};
    }
    this.#pending = cursor ?? this.#pending;
    const mine = ++this.#resyncs;
    return () => {
      if (mine !== this.#resyncs || this.#pending === undefined) return;
      this.#cursor = this.#pending;
      this.#pending = undefined;
    };
  }
}
