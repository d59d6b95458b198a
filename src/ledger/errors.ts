/**
 * Operating errors of the ledger: typed values that callers handle and that
 * the HTTP layer maps to exactly one status each (src/api/errors.ts).
 * Programmer errors are assertions, not these.
 */

/** Base class so the API can tell ledger errors from bugs. */
export class LedgerError extends Error {
  constructor(
    /** Stable machine-readable code, part of the API's error body. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidKeyError extends LedgerError {
  constructor(message: string) {
    super("invalid_key", message);
  }
}

export class KeyTooLongError extends LedgerError {
  constructor(sizeBytes: number, limitBytes: number) {
    super("key_too_long", `key is ${sizeBytes} bytes; the limit is ${limitBytes}`);
  }
}

export class ValueTooLargeError extends LedgerError {
  constructor(sizeBytes: number, limitBytes: number) {
    super("value_too_large", `value is ${sizeBytes} bytes; the limit is ${limitBytes}`);
  }
}

export class KeyNotFoundError extends LedgerError {
  constructor(key: string, detail = "") {
    super("not_found", `key ${JSON.stringify(key)} not found${detail}`);
  }
}

export class VersionNotFoundError extends LedgerError {
  constructor(key: string, version: number) {
    super("version_not_found", `key ${JSON.stringify(key)} has no version ${version}`);
  }
}

export class SeqNotFoundError extends LedgerError {
  constructor(seq: number, treeSize: number) {
    super("seq_not_found", `seq ${seq} is not in the ledger (tree size ${treeSize})`);
  }
}

/** `If-None-Match: *` on an existing key, or `If-Match` on another version. */
export class PreconditionFailedError extends LedgerError {
  constructor(message: string) {
    super("precondition_failed", message);
  }
}

/** A write the immutable ledger refuses: a second version of a key. */
export class ImmutableKeyError extends LedgerError {
  constructor(key: string) {
    super("immutable", `key ${JSON.stringify(key)} already exists and the ledger is immutable`);
  }
}

/** A delete on an immutable ledger. */
export class DeleteNotAllowedError extends LedgerError {
  constructor() {
    super("delete_not_allowed", "the ledger is immutable: delete is not allowed");
  }
}

/** A request that is well-formed but asks for something impossible (empty batch, bad cursor). */
export class InvalidRequestError extends LedgerError {
  constructor(message: string) {
    super("invalid_request", message);
  }
}

export class BatchTooLargeError extends LedgerError {
  constructor(message: string) {
    super("batch_too_large", message);
  }
}

/** A proof or checkpoint asked for a tree size the ledger does not have. */
export class TreeSizeError extends LedgerError {
  constructor(message: string) {
    super("bad_tree_size", message);
  }
}

/** The storage holds a ledger layout this build does not read. Stops start-up; never an HTTP answer. */
export class LedgerFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LedgerFormatError";
  }
}

/**
 * Entries decided elsewhere (a snapshot stream from a peer) that this ledger
 * refuses: wrong seq, a value that does not match its hash, a version that
 * does not follow the key's history. Nothing was applied. Not a client error.
 */
export class DecidedEntryError extends Error {
  override name = "DecidedEntryError";
}
