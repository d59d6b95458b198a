/**
 * Typed failures of the checkpoint layer. Every one of them means "do not
 * trust this input"; none is a programming error.
 */

/** Why a note was refused. */
export type NoteFailure =
  | "malformed" // not a well-formed signed note (encoding, layout, limits)
  | "invalid-signature" // a known key's signature does not verify
  | "unverified"; // well formed, but no signature from a known key

/** A signed note that cannot be trusted. */
export class NoteVerificationError extends Error {
  override name = "NoteVerificationError";
  readonly reason: NoteFailure;

  constructor(reason: NoteFailure, message: string) {
    super(`${reason}: ${message}`);
    this.reason = reason;
  }
}

/** A signer or verifier key string that cannot be parsed or is inconsistent. */
export class KeyFormatError extends Error {
  override name = "KeyFormatError";
}

/** A checkpoint body that does not follow C2SP tlog-checkpoint. */
export class CheckpointFormatError extends Error {
  override name = "CheckpointFormatError";
}
