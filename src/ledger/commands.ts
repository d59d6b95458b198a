/**
 * Write commands: what a client asks the ledger to append. A command is the
 * unit of atomicity: all of its operations become consecutive seqs, or none
 * do. Commands are plain data so a replicated node can carry them in its log.
 */
import { BatchTooLargeError, InvalidKeyError, InvalidRequestError, KeyTooLongError, ValueTooLargeError } from "./errors.ts";

export interface PutOperation {
  op: "put";
  key: string;
  value: Uint8Array;
  contentType: string;
  /** `If-None-Match: *`: refuse if the key currently exists. */
  ifAbsent?: boolean;
  /** `If-Match: "<version>"`: refuse unless the latest version is this one. */
  ifVersion?: number;
}

export interface DeleteOperation {
  op: "delete";
  key: string;
  ifVersion?: number;
}

export type WriteOperation = PutOperation | DeleteOperation;

/** One atomic write: a single put or delete, or a batch. */
export interface WriteCommand {
  operations: WriteOperation[];
}

/** Limits on what one command may carry. Each has a config key (see README). */
export interface LedgerLimits {
  /** Longest key in UTF-8 bytes. */
  keyBytesMax: number;
  /** Largest value in bytes. */
  valueBytesMax: number;
  /** Most operations in one batch command. */
  batchOperationsMax: number;
  /** Largest sum of value bytes in one batch command. */
  batchBytesMax: number;
  /** Longest content type string. */
  contentTypeBytesMax: number;
}

export const DEFAULT_LIMITS: LedgerLimits = {
  keyBytesMax: 1024,
  valueBytesMax: 16 * 1024 * 1024,
  batchOperationsMax: 1000,
  batchBytesMax: 32 * 1024 * 1024,
  contentTypeBytesMax: 256,
};

const encoder = new TextEncoder();

function utf8Length(text: string): number {
  // Fast path: pure ASCII strings are as long in bytes as in code units.
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  return ascii ? text.length : encoder.encode(text).length;
}

/** Check a key against the limits; throws a typed error naming the problem. */
export function validateKey(key: string, limits: LedgerLimits): void {
  if (key.length === 0) throw new InvalidKeyError("key must not be empty");
  if (!key.isWellFormed()) throw new InvalidKeyError("key is not well-formed UTF-16/UTF-8 (lone surrogate)");
  const sizeBytes = utf8Length(key);
  if (sizeBytes > limits.keyBytesMax) throw new KeyTooLongError(sizeBytes, limits.keyBytesMax);
}

/** Check a whole command before it is queued, so a bad one never reaches the log. */
export function validateCommand(command: WriteCommand, limits: LedgerLimits): void {
  const count = command.operations.length;
  if (count === 0) throw new InvalidRequestError("a batch needs at least one operation");
  if (count > limits.batchOperationsMax) {
    throw new BatchTooLargeError(`batch has ${count} operations; the limit is ${limits.batchOperationsMax}`);
  }
  let totalBytes = 0;
  for (const operation of command.operations) {
    validateKey(operation.key, limits);
    if (operation.ifVersion !== undefined && (!Number.isSafeInteger(operation.ifVersion) || operation.ifVersion < 1)) {
      throw new InvalidRequestError("If-Match version must be a positive integer");
    }
    if (operation.op !== "put") continue;
    if (operation.value.length > limits.valueBytesMax) throw new ValueTooLargeError(operation.value.length, limits.valueBytesMax);
    if (!operation.contentType.isWellFormed()) throw new InvalidRequestError("content type is not well-formed UTF-16/UTF-8 (lone surrogate)");
    if (utf8Length(operation.contentType) > limits.contentTypeBytesMax) {
      throw new InvalidRequestError(`content type longer than ${limits.contentTypeBytesMax} bytes`);
    }
    totalBytes += operation.value.length;
  }
  if (totalBytes > limits.batchBytesMax) {
    throw new BatchTooLargeError(`batch carries ${totalBytes} value bytes; the limit is ${limits.batchBytesMax}`);
  }
}

/** Approximate size of a command in bytes, for queue byte limits. */
export function commandSizeBytes(command: WriteCommand): number {
  let total = 0;
  for (const operation of command.operations) {
    total += operation.key.length + 64 + (operation.op === "put" ? operation.value.length : 0);
  }
  return total;
}
