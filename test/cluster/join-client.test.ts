/**
 * The --join client against a scripted member: it retries network errors,
 * 503s and 409 change_pending (another change is being applied), and stops
 * at once on refusals a retry cannot change; it gives up at its deadline.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { serve, type RunningServer } from "../../adapters/runtime/serve.ts";
import { joinCluster, JoinRefusedError } from "../../src/node/join.ts";

const LIMITS = { timeoutMs: 2_000, retryDelayMs: 5 };
const member = { id: 4, clientAddress: "127.0.0.1:8004", raftAddress: "127.0.0.1:9004" };
let server: RunningServer | undefined;

afterEach(async () => {
  await server?.stop();
  server = undefined;
});

/** A member that answers the scripted responses in turn (the last one repeats), recording the bodies. */
async function scripted(responses: Array<[number, unknown]>): Promise<{ url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  server = await serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (request) => {
      bodies.push(await request.json());
      const [status, body] = responses[Math.min(bodies.length - 1, responses.length - 1)]!;
      return Response.json(body, { status });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, bodies };
}

const error = (code: string) => ({ error: { code, message: code } });

describe("joinCluster", () => {
  test("retries 503 and change_pending, then reports whether it added the node", async () => {
    const { url, bodies } = await scripted([[503, error("unavailable")], [409, error("change_pending")], [201, { changed: true }]]);
    const retries: string[] = [];
    expect(await joinCluster(url, member, LIMITS, (problem) => retries.push(problem))).toBe(true);
    expect(retries.length).toBe(2);
    expect(bodies).toEqual(Array(3).fill({ id: 4, client_address: "127.0.0.1:8004", raft_address: "127.0.0.1:9004" }));
    const again = await scripted([[200, { changed: false }]]);
    expect(await joinCluster(again.url, member, LIMITS)).toBe(false);
  });

  test("a conflict, a bad request or a removed id stops at once", async () => {
    for (const [status, code] of [[409, "membership_conflict"], [400, "bad_member"], [404, "not_found"]] as const) {
      const { url, bodies } = await scripted([[status, error(code)]]);
      await expect(joinCluster(url, member, LIMITS)).rejects.toThrow(JoinRefusedError);
      expect(bodies.length).toBe(1);
      await server!.stop();
      server = undefined;
    }
  });

  test("gives up at its deadline when nobody answers", async () => {
    const started = Date.now();
    await expect(joinCluster("http://127.0.0.1:1", member, { timeoutMs: 300, retryDelayMs: 20 })).rejects.toThrow(/no answer/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
