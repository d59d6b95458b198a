/** A bare Hono hello-world server, the baseline bench/http.ts compares against. */
import { Hono } from "hono";
import { serve } from "../adapters/runtime/serve.ts";

const app = new Hono();
app.get("/", (c) => c.text("hello"));
app.put("/*", async (c) => c.json({ ok: true, size: (await c.req.arrayBuffer()).byteLength }));
const server = await serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 });
console.log(`listening on http://127.0.0.1:${server.port}`);
