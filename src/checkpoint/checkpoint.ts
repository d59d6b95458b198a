/**
 * C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint):
 *   <origin>\n<tree size, decimal>\n<base64 root hash>\n[<extension line>\n...]
 * and helpers to sign and open them as signed notes. Parsing must reject
 * anything ambiguous: leading zeros, non-canonical base64, wrong hash length.
 */
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { CheckpointFormatError } from "./errors.ts";
import { isWellFormedUnicode, type Signer, type Verifier } from "./keys.ts";
import { openNote, signNote } from "./note.ts";

export const ROOT_HASH_BYTES = 32;
/** Most extension lines accepted after the root hash. */
export const EXTENSION_LINES_MAX = 64;

export interface Checkpoint {
  /** Unique log identity, e.g. "ledger.example.com/prod". */
  origin: string;
  /** Number of leaves; a safe non-negative integer. */
  treeSize: number;
  /** RFC 9162 root of the first treeSize leaves (32 bytes). */
  rootHash: Uint8Array;
  /** Optional extra lines (e.g. a timestamp), opaque to this module. */
  extensions?: string[];
}

/** A checkpoint line: non-empty, valid Unicode, no control characters (so no newline). */
function isValidLine(line: string): boolean {
  return line.length > 0 && isWellFormedUnicode(line) && !/[\u0000-\u001f\u007f]/.test(line);
}

/** Formats the checkpoint body. Throws CheckpointFormatError on invalid fields. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, treeSize, rootHash, extensions = [] } = checkpoint;
  if (typeof origin !== "string" || !isValidLine(origin)) throw new CheckpointFormatError("invalid origin");
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) throw new CheckpointFormatError("invalid tree size");
  if (!(rootHash instanceof Uint8Array) || rootHash.length !== ROOT_HASH_BYTES) {
    throw new CheckpointFormatError(`root hash must be ${ROOT_HASH_BYTES} bytes`);
  }
  if (extensions.length > EXTENSION_LINES_MAX || !extensions.every(isValidLine)) {
    throw new CheckpointFormatError("invalid extension lines");
  }
  return [origin, String(treeSize), encodeBase64(rootHash), ...extensions].map((line) => `${line}\n`).join("");
}

/** Parses and validates a checkpoint body (the text of an opened note). */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== "string" || !text.endsWith("\n")) {
    throw new CheckpointFormatError("checkpoint must end with a newline");
  }
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new CheckpointFormatError("checkpoint needs origin, size and root lines");
  if (lines.length - 3 > EXTENSION_LINES_MAX) throw new CheckpointFormatError("too many extension lines");
  if (!lines.every(isValidLine)) throw new CheckpointFormatError("empty or invalid line");
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new CheckpointFormatError("tree size must be decimal without leading zeros");
  const treeSize = Number(sizeText);
  if (!Number.isSafeInteger(treeSize)) throw new CheckpointFormatError("tree size too large");
  const rootHash = decodeBase64(rootText);
  if (rootHash === undefined || rootHash.length !== ROOT_HASH_BYTES) {
    throw new CheckpointFormatError(`root hash must be canonical base64 of ${ROOT_HASH_BYTES} bytes`);
  }
  return { origin, treeSize, rootHash, extensions };
}

/** Formats and signs a checkpoint as a signed note. */
export function signCheckpoint(signer: Signer, checkpoint: Checkpoint): string {
  return signNote(signer, formatCheckpoint(checkpoint));
}

/**
 * Opens a signed checkpoint note: verifies it with `verifiers` (throws
 * NoteVerificationError), parses it (throws CheckpointFormatError), and when
 * `origin` is given requires it to match (CheckpointFormatError otherwise).
 */
export function openCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly Verifier[],
  origin?: string,
): Checkpoint & { verifiedBy: Verifier[] } {
  const opened = openNote(note, verifiers);
  const checkpoint = parseCheckpoint(opened.text);
  if (origin !== undefined && checkpoint.origin !== origin) {
    throw new CheckpointFormatError(`origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(origin)}`);
  }
  return { ...checkpoint, verifiedBy: opened.verifiedBy };
}
