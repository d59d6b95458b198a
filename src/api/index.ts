/**
 * The HTTP API as a Hono app over the `LedgerNode` seam. It speaks only
 * Request/Response; serving a port is the runtime adapter's job. Every
 * error leaves through `errorResponse`, so no malformed request becomes a 500.
 */
import { Hono } from "hono";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { type ApiContext } from "./context.ts";
import { errorResponse, HttpError } from "./errors.ts";
import { registerCompatRoutes } from "./routes-compat.ts";
import { registerDataRoutes } from "./routes-data.ts";
import { registerOpsRoutes } from "./routes-ops.ts";
import { registerVerifyRoutes } from "./routes-verify.ts";
import { watchResponse } from "./watch.ts";

export { type ApiContext, type HttpLimits, DEFAULT_HTTP_LIMITS } from "./context.ts";
export { Metrics } from "./metrics.ts";

/** Build the HTTP app. `api.metrics` receives one observation per request. */
export function createApp(api: ApiContext): Hono {
  // RegExpRouter matches every route in one regular expression; the route
  // table is written so that it supports all of them (see routes-compat.ts).
  const app = new Hono({ router: new RegExpRouter() });
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const route = c.req.routePath ?? "unmatched";
    api.metrics.observe(c.req.method, route, c.res.status, (performance.now() - started) / 1000);
  });
  app.onError((error, c) => errorResponse(c, error));
  app.notFound((c) => errorResponse(c, new HttpError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`)));
  registerOpsRoutes(app, api);
  registerVerifyRoutes(app, api);
  app.get("/v1/watch", (c) => watchResponse(api, c));
  registerDataRoutes(app, api);
  registerCompatRoutes(app, api);
  return app;
}
