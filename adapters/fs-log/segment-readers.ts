/**
 * A bounded cache of read-only fds on segment files, for reading values that
 * are not held inline. An fd evicted while a read is using it is closed when
 * that read finishes, never under it.
 */
import { closeFile, openFile, readExact } from "./fs-io.ts";

interface Slot {
  fd: Promise<number>;
  users: number;
  evicted: boolean;
}

export class SegmentReaders {
  #slots = new Map<number, Slot>();
  #pathOf: (segment: number) => string;
  #fdsMax: number;

  constructor(pathOf: (segment: number) => string, fdsMax: number) {
    if (!(fdsMax >= 1)) throw new RangeError("SegmentReaders needs at least one fd");
    this.#pathOf = pathOf;
    this.#fdsMax = fdsMax;
  }

  /** Read exactly `length` bytes at `offset` of `segment`; a short file rejects with RangeError. */
  async read(segment: number, offset: number, length: number): Promise<Uint8Array> {
    const slot = this.#acquire(segment);
    try {
      return await readExact(await slot.fd, length, offset);
    } finally {
      slot.users--;
      if (slot.evicted && slot.users === 0) await this.#closeSlot(slot);
    }
  }

  async closeAll(): Promise<void> {
    const idle: Slot[] = [];
    for (const slot of this.#slots.values()) {
      slot.evicted = true;
      if (slot.users === 0) idle.push(slot);
    }
    this.#slots.clear();
    await Promise.all(idle.map((slot) => this.#closeSlot(slot)));
  }

  #acquire(segment: number): Slot {
    let slot = this.#slots.get(segment);
    if (slot !== undefined) {
      this.#slots.delete(segment); // re-insert: Map order doubles as recency order
    } else {
      slot = { fd: openFile(this.#pathOf(segment), "r"), users: 0, evicted: false };
      const opened = slot;
      opened.fd.catch(() => {
        if (this.#slots.get(segment) === opened) this.#slots.delete(segment);
      });
    }
    this.#slots.set(segment, slot);
    slot.users++;
    this.#evictBeyondMax();
    return slot;
  }

  #evictBeyondMax(): void {
    for (const [segment, slot] of this.#slots) {
      if (this.#slots.size <= this.#fdsMax) return;
      this.#slots.delete(segment);
      slot.evicted = true;
      if (slot.users === 0) void this.#closeSlot(slot);
    }
  }

  async #closeSlot(slot: Slot): Promise<void> {
    let fd: number;
    try {
      fd = await slot.fd;
    } catch {
      return; // the open failed; the read that needed it has already reported that
    }
    await closeFile(fd);
  }
}
