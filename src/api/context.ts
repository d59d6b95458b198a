/**
 * What every route module shares: the node, limits, metrics, and the small
 * helpers that turn raw request parts (path keys, query numbers, headers)
 * into validated values or a 400.
 */
import type { Context } from "hono";
import * as v from "valibot";
import { type LedgerLimits, validateKey } from "../ledger/commands.ts";
import { type Consistency, type LedgerNode } from "../node/index.ts";
import { type AppliedOperation } from "../ledger/ledger.ts";
import { toBase64 } from "../encoding.ts";
import { HttpError } from "./errors.ts";
import { type Metrics } from "./metrics.ts";

/** HTTP-level limits; each is a config key (see README). */
export interface HttpLimits extends LedgerLimits {
  /** Largest request body in bytes for JSON/CBOR routes (batch, /put). */
  bodyBytesMax: number;
  /** Default page size for paginated routes. */
  pageSizeDefault: number;
  /** Largest page size a client may ask for. */
  pageSizeMax: number;
  /** Most concurrent watch streams. */
  watchStreamsMax: number;
}

export const DEFAULT_HTTP_LIMITS: Omit<HttpLimits, keyof LedgerLimits> = {
  bodyBytesMax: 64 * 1024 * 1024,
  pageSizeDefault: 100,
  pageSizeMax: 1000,
  watchStreamsMax: 256,
};

/** Everything the routes need. */
export interface ApiContext {
  node: LedgerNode;
  limits: HttpLimits;
  metrics: Metrics;
  /** Bytes used by storage, for metrics. */
  storageBytes: () => Promise<number>;
  /** Write-queue depth, for metrics. */
  queueDepth: () => number;
}

/**
 * The key in the path after `prefix`, percent-decoded strictly and checked
 * against the key limits. Raw path bytes are used so that `%2F` and `/` both
 * mean a slash inside the key.
 */
export function keyFromPath(c: Context, prefix: string, limits: LedgerLimits): string {
  const url = c.req.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const queryStart = url.indexOf("?", pathStart);
  const path = url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
  if (!path.startsWith(prefix)) throw new HttpError(404, "not_found", "no such route");
  let key: string;
  try {
    key = decodeURIComponent(path.slice(prefix.length));
  } catch {
    throw new HttpError(400, "invalid_key", "key is not valid percent-encoded UTF-8");
  }
  validateKey(key, limits);
  return key;
}

/** An optional non-negative integer query parameter within [min, max]. */
export function intQuery(c: Context, name: string, bounds: { min: number; max: number }): number | undefined {
  const raw = c.req.query(name);
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,16}$/.test(raw)) throw new HttpError(400, "bad_query", `query parameter ${name} must be a non-negative integer`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
    throw new HttpError(400, "bad_query", `query parameter ${name} must be in [${bounds.min}, ${bounds.max}]`);
  }
  return value;
}

/** `?limit=` clamped to the page limits. */
export function pageSize(c: Context, limits: HttpLimits): number {
  return intQuery(c, "limit", { min: 1, max: limits.pageSizeMax }) ?? limits.pageSizeDefault;
}

const ConsistencySchema = v.optional(v.picklist(["linearizable", "stale"]), "linearizable");

/** `?consistency=` (default linearizable), after waiting on the node's read barrier. */
export async function readBarrier(c: Context, node: LedgerNode): Promise<void> {
  const parsed = v.safeParse(ConsistencySchema, c.req.query("consistency"));
  if (!parsed.success) throw new HttpError(400, "bad_query", "consistency must be linearizable or stale");
  await node.readBarrier(parsed.output as Consistency);
}

/** `If-Match: "<version>"` (quotes optional, a weak prefix tolerated) as a number. */
export function ifMatchVersion(c: Context): number | undefined {
  const raw = c.req.header("if-match");
  if (raw === undefined) return undefined;
  const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(raw);
  if (match === null) throw new HttpError(400, "bad_if_match", 'If-Match must be "<version>" (a positive integer in quotes)');
  return Number(match[1]);
}

/** JSON view of one applied operation, shared by PUT, DELETE and batch replies. */
export function appliedJson(applied: AppliedOperation, treeSize: number): Record<string, unknown> {
  return {
    key: applied.key,
    op: applied.op,
    seq: applied.seq,
    version: applied.version,
    leafHash: toBase64(applied.leafHash),
    treeSize,
  };
}
