/**
 * Answers a peer's POST is waiting for (see the transport's module comment):
 * a slot collects the Raft messages for that peer from the first Ready that
 * started after the POST's messages were stepped, and resolves when that
 * Ready's messages go out, after its persist. A slot that no Ready fills
 * resolves empty: when the Ready loop goes idle, after `waitMs`, or on close.
 * Whatever is not in a slot goes out by POST as before, so a slot only ever
 * changes which round trip carries a message, never whether it is sent.
 */
import { type Message, type MessageType, type NodeId } from "../raft/index.ts";

/** Messages whose receiver answers the sender: a POST carrying one waits for the answers. */
export const ANSWERED_TYPES: ReadonlySet<MessageType> = new Set(["app", "heartbeat", "vote", "preVote"]);

interface Slot {
  to: NodeId;
  /** Number of the last Ready started before the slot opened; a later Ready fills it. */
  after: number;
  messages: Message[];
  resolve: (messages: Message[]) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class ReplySlots {
  #slots: Slot[] = [];

  constructor(readonly waitMs: number, readonly max: number) {}

  /** Open a slot for answers to `to` from a Ready numbered above `after`; undefined when `max` are open. */
  open(to: NodeId, after: number): Promise<Message[]> | undefined {
    if (this.#slots.length >= this.max) return undefined;
    return new Promise((resolve) => {
      const slot: Slot = { to, after, messages: [], resolve, timer: undefined as unknown as ReturnType<typeof setTimeout> };
      slot.timer = setTimeout(() => this.#close((open) => open === slot), this.waitMs);
      this.#slots.push(slot);
    });
  }

  /**
   * Ready `number` is sending `messages`: those for a slot it fills go into the slot, and every slot it
   * fills resolves. Returns the messages to send by POST.
   */
  divert(messages: readonly Message[], number: number): readonly Message[] {
    if (this.#slots.length === 0) return messages;
    const rest: Message[] = [];
    for (const message of messages) {
      const slot = this.#slots.find((open) => open.to === message.to && open.after < number);
      if (slot === undefined) rest.push(message);
      else slot.messages.push(message);
    }
    this.#close((slot) => slot.after < number);
    return rest;
  }

  /** Resolve every open slot with what it holds (no Ready will fill them). */
  closeAll(): void {
    if (this.#slots.length > 0) this.#close(() => true);
  }

  get size(): number {
    return this.#slots.length;
  }

  #close(which: (slot: Slot) => boolean): void {
    const keep: Slot[] = [];
    for (const slot of this.#slots) {
      if (!which(slot)) {
        keep.push(slot);
        continue;
      }
      clearTimeout(slot.timer);
      slot.resolve(slot.messages);
    }
    this.#slots = keep;
  }
}
