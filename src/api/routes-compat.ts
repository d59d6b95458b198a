/**
 * Compat routes (API.md "Compat data routes") so the commands in the
 * original Scribe Ledger and BlockDB documentation work unchanged. Each maps
 * onto the same handlers as the /v1 routes.
 */
import type { Context, Hono } from "hono";
import * as v from "valibot";
import { parseJson, readBodyCapped } from "./body.ts";
import { type ApiContext, keyFromPath } from "./context.ts";
import { HttpError } from "./errors.ts";
import { applyBatch, getValue, putValue, readBatch, valueResponse } from "./routes-data.ts";

const PutJsonSchema = v.object({ key: v.string(), value: v.string() });

/** Top-level names that are routes of their own, never compat keys. */
const RESERVED_TOP_LEVEL = new Set(["v1", "api", "cluster", "metrics", "health", "verify", "get", "put"]);

export function registerCompatRoutes(app: Hono, api: ApiContext): void {
  const { limits } = api;
  const putJson = async (c: Context) => {
    const body = parseJson(await readBodyCapped(c.req.raw, limits.bodyBytesMax));
    const parsed = v.safeParse(PutJsonSchema, body);
    if (!parsed.success) throw new HttpError(400, "bad_body", 'body must be JSON {"key": string, "value": string}');
    const value = new TextEncoder().encode(parsed.output.value);
    return putValue(api, c, { op: "put", key: parsed.output.key, value, contentType: "text/plain; charset=utf-8" });
  };
  app.put("/put", putJson);
  app.post("/put", putJson);
  app.post("/api/v1/put", putJson);
  app.get("/get/*", async (c) => {
    const view = await getValue(api, c, keyFromPath(c, "/get/", limits));
    return c.body(view.value as Uint8Array<ArrayBuffer>, 200, { "Content-Type": view.contentType, "X-Scribe-Seq": String(view.seq) });
  });
  app.get("/api/v1/get/*", async (c) => valueResponse(c, await getValue(api, c, keyFromPath(c, "/api/v1/get/", limits))));
  app.post("/api/v1/batch", async (c) => applyBatch(api, c, await readBatch(api, c)));

  // `PUT|GET|DELETE /{key}`: a catch-all registered last, so every real route
  // wins; it accepts exactly one path segment. (A "/:key" pattern would push
  // Hono from its RegExpRouter to the slower trie router.)
  const topLevelKey = (c: Context): string => {
    const path = c.req.path;
    if (path.indexOf("/", 1) !== -1) throw new HttpError(404, "not_found", `no route for ${c.req.method} ${path}`);
    const key = keyFromPath(c, "/", limits);
    if (RESERVED_TOP_LEVEL.has(key)) throw new HttpError(404, "not_found", `/${key} is a route, not a key; use /v1/kv/${key}`);
    return key;
  };
  app.put("/*", async (c) => {
    const key = topLevelKey(c);
    const value = await readBodyCapped(c.req.raw, limits.valueBytesMax);
    const contentType = c.req.header("content-type") ?? "application/octet-stream";
    return putValue(api, c, { op: "put", key, value, contentType });
  });
  app.get("/*", async (c) => valueResponse(c, await getValue(api, c, topLevelKey(c))));
  app.delete("/*", async (c) => putValue(api, c, { op: "delete", key: topLevelKey(c) }));
}
