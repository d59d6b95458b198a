/**
 * The single-flight loop that drives a node's Ready handling: at most one
 * step runs at a time, and it keeps running steps while there is work. A
 * kick that arrives while a step runs, or in the instant after the loop saw
 * no more work, is never lost: the "running" flag is cleared synchronously in
 * the same turn as the last check, so a later kick always starts a new loop.
 * It must never run two steps at once (the Raft core allows one Ready).
 */

/** Options of {@link ReadyLoop}. */
export interface ReadyLoopOptions {
  /** Whether a step would do anything now. */
  hasWork: () => boolean;
  /** One step (one Ready); the loop awaits it before checking for more work. */
  step: () => Promise<void>;
  /** Whether to stop looping (closed or failed); checked before every step. */
  stopped: () => boolean;
  /** A step threw: the loop stops; the caller fail-stops the node. */
  onError: (error: unknown) => void;
  /** The loop ended (no work left, stopped or failed); called right after it stops running. */
  onIdle?: () => void;
}

export class ReadyLoop {
  readonly #options: ReadyLoopOptions;
  #running = false;
  #current: Promise<void> = Promise.resolve();

  constructor(options: ReadyLoopOptions) {
    this.#options = options;
  }

  /** Start the loop unless it is running (a running loop re-checks for work before it ends). */
  kick(): void {
    if (this.#running || this.#options.stopped()) return;
    this.#running = true;
    this.#current = this.#run();
  }

  async #run(): Promise<void> {
    try {
      while (!this.#options.stopped() && this.#options.hasWork()) await this.#options.step();
    } catch (error) {
      this.#options.onError(error);
    } finally {
      // Synchronously after the last hasWork() check: no kick can slip in between.
      this.#running = false;
      this.#options.onIdle?.();
    }
  }

  /** Whether a step is running or about to run. */
  get running(): boolean {
    return this.#running;
  }

  /** Resolves once no step is running. */
  async idle(): Promise<void> {
    while (this.#running) await this.#current;
  }
}
