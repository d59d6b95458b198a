/**
 * Readers run together; a writer runs alone. A waiting writer holds back new
 * readers so a stream of reads cannot starve commits. Writers are expected to
 * be serialized by the caller (one flush loop).
 */
export class ReadWriteGate {
  #readers = 0;
  #writer: Promise<void> | undefined;
  #readersDrained: (() => void) | undefined;

  async read<T>(run: () => Promise<T>): Promise<T> {
    while (this.#writer !== undefined) await this.#writer;
    this.#readers++;
    try {
      return await run();
    } finally {
      if (--this.#readers === 0) this.#readersDrained?.();
    }
  }

  async exclusive<T>(run: () => Promise<T>): Promise<T> {
    if (this.#writer !== undefined) throw new Error("ReadWriteGate: exclusive sections must not overlap");
    let release!: () => void;
    this.#writer = new Promise((resolve) => (release = resolve));
    try {
      while (this.#readers > 0) await new Promise<void>((resolve) => (this.#readersDrained = resolve));
      return await run();
    } finally {
      this.#writer = undefined;
      this.#readersDrained = undefined;
      release();
    }
  }
}
