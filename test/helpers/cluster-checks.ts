/** Checks shared by the tests that run real multi-process clusters: acknowledged writes, and convergence of every node. */
import { expect } from "bun:test";
import { type TestCluster } from "./process-cluster.ts";
import { until } from "./poll.ts";

/** How long one write may keep being retried. */
export const CLUSTER_DEADLINE_MS = 15_000;

/**
 * PUT with the key as its Idempotency-Key, retrying 503s and network errors until acknowledged (201, or
 * 201 replayed) or the deadline; a retry goes to `via()` once node `id` is down, so a write sent to a
 * killed node is retried elsewhere.
 */
export async function putAcknowledged(c: TestCluster, id: number, key: string, value: string, via: () => number = () => id): Promise<void> {
  await until(`PUT ${key} via node ${id}`, async () => {
    const target = c.running().includes(id) ? id : via();
    const response = await fetch(c.url(target, `/v1/kv/${encodeURIComponent(key)}`), { method: "PUT", body: value, headers: { "Idempotency-Key": key } });
    await response.arrayBuffer();
    if (response.status === 201) return true;
    if (response.status === 503) return undefined;
    throw new Error(`PUT ${key}: ${response.status}`);
  }, CLUSTER_DEADLINE_MS);
}

/** Every node serves every acknowledged value with the same seq, and the same checkpoint. */
export async function expectConverged(c: TestCluster, acknowledged: Map<string, string>): Promise<void> {
  const seqs = new Map<string, number>();
  for (const id of c.ids) {
    for (const [key, value] of acknowledged) {
      const response = await fetch(c.url(id, `/v1/kv/${encodeURIComponent(key)}`), { headers: { Accept: "application/json" } });
      expect(response.status).toBe(200);
      const body = await response.json();
      expect(body.value).toBe(value);
      if (!seqs.has(key)) seqs.set(key, body.seq);
      expect(body.seq).toBe(seqs.get(key)!);
    }
  }
  const notes = await Promise.all(c.ids.map(async (id) => (await fetch(c.url(id, "/v1/checkpoint"))).text()));
  expect(new Set(notes).size).toBe(1);
}
