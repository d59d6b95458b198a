/**
 * `GET /v1/watch?from=SEQ`: committed entries from SEQ on, then live, as
 * server-sent events (default) or NDJSON (`?format=ndjson` or
 * `Accept: application/x-ndjson`). Built on a Web ReadableStream whose pull
 * reads one page of the log at a time, so a slow client holds back only its
 * own stream and never buffers more than one page.
 */
import type { Context } from "hono";
import { type ApiContext, intQuery } from "./context.ts";
import { HttpError } from "./errors.ts";
import { logItemJson } from "./routes-data.ts";

/** Entries read from storage per pull. */
export const WATCH_PAGE_ENTRIES = 256;
/** Idle time after which an SSE comment keeps proxies from closing the stream. */
export const WATCH_HEARTBEAT_MS = 15_000;

/** Open watch streams per API (one process may serve several, e.g. a test's in-process cluster). */
const openStreams = new WeakMap<ApiContext, number>();

export function watchResponse(api: ApiContext, c: Context): Response {
  const from = intQuery(c, "from", { min: 0, max: Number.MAX_SAFE_INTEGER }) ?? api.node.ledger.treeSize;
  const ndjson = c.req.query("format") === "ndjson" || (c.req.header("accept") ?? "").includes("application/x-ndjson");
  const open = openStreams.get(api) ?? 0;
  if (open >= api.limits.watchStreamsMax) {
    throw new HttpError(503, "too_many_watchers", `at most ${api.limits.watchStreamsMax} watch streams may be open`);
  }
  openStreams.set(api, open + 1);
  const encoder = new TextEncoder();
  const signal = c.req.raw.signal;
  let cursor = from;
  let wake: (() => void) | undefined;
  let released = false;
  const unsubscribe = api.node.subscribe(() => wake?.());
  const release = () => {
    if (released) return;
    released = true;
    openStreams.set(api, openStreams.get(api)! - 1);
    unsubscribe();
    wake?.();
  };
  signal.addEventListener("abort", release);

  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (!released) {
        const ledger = api.node.ledger;
        if (cursor < ledger.treeSize) {
          const page = await ledger.log({ from: cursor, limit: WATCH_PAGE_ENTRIES });
          let text = "";
          for (const item of page.items) {
            const json = JSON.stringify(logItemJson(item));
            text += ndjson ? `${json}\n` : `id: ${item.entry.seq}\nevent: entry\ndata: ${json}\n\n`;
          }
          cursor = page.items.length === 0 ? ledger.treeSize : page.items[page.items.length - 1]!.entry.seq + 1;
          controller.enqueue(encoder.encode(text));
          return;
        }
        const woken = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), WATCH_HEARTBEAT_MS);
          wake = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        wake = undefined;
        if (!woken && !released) {
          controller.enqueue(encoder.encode(ndjson ? "\n" : ": heartbeat\n\n"));
          return;
        }
      }
      controller.close();
    },
    cancel() {
      release();
    },
  });
  return new Response(stream, {
    headers: {
      "Content-Type": ndjson ? "application/x-ndjson" : "text/event-stream",
      "Cache-Control": "no-cache",
      "X-Accel-Buffering": "no",
    },
  });
}
