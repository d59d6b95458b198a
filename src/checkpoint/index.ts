/**
 * Signed checkpoints for Scribe Ledger: C2SP signed notes with Ed25519 keys
 * and C2SP tlog-checkpoint bodies. Pure: Web-standard APIs plus @noble only.
 */
export { decodeBase64, encodeBase64 } from "./base64.ts";
export { CheckpointFormatError, KeyFormatError, type NoteFailure, NoteVerificationError } from "./errors.ts";
export {
  ALGORITHM_ED25519,
  computeKeyId,
  formatKeyId,
  formatSignerKey,
  generateSigner,
  isValidKeyName,
  KEY_NAME_BYTES_MAX,
  parseSignerKey,
  parseVerifierKey,
  type Signer,
  signerFromSeed,
  type Verifier,
  verifierKeyString,
  verifierOf,
} from "./keys.ts";
export { NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX, type OpenedNote, openNote, signNote, signNoteAsync, type UnverifiedSignature } from "./note.ts";
export {
  type Checkpoint,
  EXTENSION_LINES_MAX,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  ROOT_HASH_BYTES,
  signCheckpoint,
} from "./checkpoint.ts";
