/**
 * Issues signed checkpoints (C2SP tlog-checkpoint bodies in C2SP signed
 * notes) for tree sizes. Ed25519 signatures are deterministic, so the note
 * for a given (origin, size, root) is byte-identical whoever signs it with
 * the cluster key; that is why no timestamp line is added and why old
 * checkpoints need not be stored: they are re-signed on demand.
 */
import { formatCheckpoint, signNoteAsync, verifierKeyString, type Signer } from "../checkpoint/index.ts";

/** A signed checkpoint for one tree size. */
export interface SignedCheckpoint {
  treeSize: number;
  rootHash: Uint8Array;
  /** The full signed note text. */
  note: string;
}

/** Options of {@link CheckpointIssuer}. */
export interface CheckpointIssuerOptions {
  signer: Signer;
  origin: string;
  /**
   * Paces background signing: awaited after each background signature
   * before the next (the edge passes a timer; default: no pause). Under a
   * steady write load this bounds the CPU spent re-signing the newest size,
   * which readers get signed on demand anyway when the background one lags.
   */
  pause?: () => Promise<void>;
}

export class CheckpointIssuer {
  readonly #signer: Signer;
  readonly origin: string;
  readonly #pause: (() => Promise<void>) | undefined;
  #latest: SignedCheckpoint | undefined;
  // Background issuing: at most one signature in flight; newer sizes that
  // arrive meanwhile collapse into the one `#pending` slot.
  #signing = false;
  #pending: { treeSize: number; rootHash: Uint8Array } | undefined;

  constructor(options: CheckpointIssuerOptions) {
    this.#signer = options.signer;
    this.origin = options.origin;
    this.#pause = options.pause;
  }

  /** The verifier key clients use: `name+keyid+base64(0x01||pubkey)`. */
  get verifierKey(): string {
    return verifierKeyString(this.#signer);
  }

  /** The newest checkpoint issued, if any. */
  get latest(): SignedCheckpoint | undefined {
    return this.#latest;
  }

  /** Sign a checkpoint for (treeSize, rootHash) and remember it as the newest if it is. */
  async issue(treeSize: number, rootHash: Uint8Array): Promise<SignedCheckpoint> {
    const signed = await this.sign(treeSize, rootHash);
    if (this.#latest === undefined || treeSize >= this.#latest.treeSize) this.#latest = signed;
    return signed;
  }

  /**
   * Issue a checkpoint for (treeSize, rootHash) in the background, off the
   * write acknowledgement path. Under load this signs the newest size once
   * per signature time instead of once per commit; readers asking for the
   * current size before it lands get it signed on demand (`sign`).
   */
  schedule(treeSize: number, rootHash: Uint8Array): void {
    if (this.#pending === undefined || treeSize > this.#pending.treeSize) this.#pending = { treeSize, rootHash };
    if (this.#signing) return;
    this.#signing = true;
    void this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending !== undefined) {
        const { treeSize, rootHash } = this.#pending;
        this.#pending = undefined;
        await this.issue(treeSize, rootHash);
        if (this.#pause !== undefined) await this.#pause();
      }
    } finally {
      this.#signing = false;
    }
  }

  /** Sign a checkpoint without changing the newest. */
  async sign(treeSize: number, rootHash: Uint8Array): Promise<SignedCheckpoint> {
    if (this.#latest !== undefined && this.#latest.treeSize === treeSize) return this.#latest;
    const body = formatCheckpoint({ origin: this.origin, treeSize, rootHash });
    const note = await signNoteAsync(this.#signer, body);
    return { treeSize, rootHash, note };
  }
}
