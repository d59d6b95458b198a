/**
 * The one place where errors become HTTP responses. Every error body is
 * `{"error": {"code", "message"}}`. Operating errors map to a fixed status;
 * anything else is a server fault (500) and is logged.
 */
import type { Context } from "hono";
import {
  BatchTooLargeError, DeleteNotAllowedError, ImmutableKeyError, InvalidKeyError, InvalidRequestError, KeyNotFoundError,
  KeyTooLongError, LedgerError, PreconditionFailedError, SeqNotFoundError, TreeSizeError, ValueTooLargeError,
  VersionNotFoundError,
} from "../ledger/errors.ts";
import { MemberNotFoundError, MembershipChangePendingError, MembershipConflictError, NodeUnavailableError } from "../node/index.ts";
import { ProofError, TreeSizeError as MerkleTreeSizeError } from "../merkle/index.ts";

/** An error raised by the HTTP layer itself (bad query, body, header). */
export class HttpError extends LedgerError {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 406 | 411 | 413 | 415 | 429 | 503,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

const STATUS_BY_ERROR: Array<[new (...args: never[]) => LedgerError, number]> = [
  [InvalidKeyError, 400],
  [KeyTooLongError, 400],
  [InvalidRequestError, 400],
  [TreeSizeError, 400],
  [ValueTooLargeError, 413],
  [BatchTooLargeError, 413],
  [KeyNotFoundError, 404],
  [VersionNotFoundError, 404],
  [SeqNotFoundError, 404],
  [DeleteNotAllowedError, 405],
  [ImmutableKeyError, 409],
  [PreconditionFailedError, 412],
  [NodeUnavailableError, 503],
  [MembershipConflictError, 409],
  [MembershipChangePendingError, 409],
  [MemberNotFoundError, 404],
];

/** HTTP status for a ledger or HTTP error; 500 for anything else. */
export function statusOf(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  // Proof arithmetic refusing its arguments means the request asked for an impossible tree shape.
  if (error instanceof ProofError || error instanceof MerkleTreeSizeError) return 400;
  for (const [type, status] of STATUS_BY_ERROR) if (error instanceof type) return status;
  return 500;
}

/** JSON error body with the status `error` maps to. */
export function errorResponse(c: Context, error: unknown): Response {
  const status = statusOf(error);
  if (status === 500) {
    console.error("internal error:", error);
    return c.json({ error: { code: "internal", message: "internal server error" } }, 500);
  }
  const { code, message } = error instanceof LedgerError ? error : { code: "bad_request", message: (error as Error).message };
  const headers: Record<string, string> = {};
  if (error instanceof NodeUnavailableError) headers["Retry-After"] = String(error.retryAfterSeconds);
  return c.json({ error: { code, message } }, status as 400, headers);
}
