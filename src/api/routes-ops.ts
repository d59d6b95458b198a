/**
 * Cluster and operations routes (API.md "Cluster and operations"): health,
 * metrics in JSON and Prometheus text, cluster status, members and leader
 * (with the seeds' aliases). Membership changes answer 501 on a node that
 * is not part of a Raft cluster.
 */
import type { Context, Hono } from "hono";
import { type ApiContext } from "./context.ts";
import { type Gauges } from "./metrics.ts";

async function gauges(api: ApiContext): Promise<Gauges> {
  const status = api.node.status();
  return {
    treeSize: api.node.ledger.treeSize,
    storageBytes: await api.storageBytes(),
    raftTerm: status.term,
    raftCommitIndex: status.commitIndex,
    raftAppliedIndex: status.appliedIndex,
    writeQueueDepth: api.queueDepth(),
    healthy: api.node.unhealthyReason() === undefined,
  };
}

export function registerOpsRoutes(app: Hono, api: ApiContext): void {
  const { node } = api;
  const health = (c: Context) => {
    const reason = node.unhealthyReason();
    const status = node.status();
    const body = { status: reason === undefined ? "ok" : "unavailable", reason, nodeId: status.nodeId, role: status.role, treeSize: status.treeSize };
    return c.json(body, reason === undefined ? 200 : 503);
  };
  app.get("/health", health);
  app.get("/cluster/health", health);
  app.get("/metrics", async (c) => c.json(api.metrics.json(await gauges(api))));
  app.get("/metrics/prometheus", async (c) =>
    c.body(api.metrics.prometheus(await gauges(api)), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }),
  );
  const clusterStatus = (c: Context) => {
    const status = node.status();
    return c.json({
      nodeId: status.nodeId, role: status.role, term: status.term, leaderId: status.leaderId ?? null,
      leaderAddress: status.leaderAddress ?? null, commitIndex: status.commitIndex, appliedIndex: status.appliedIndex,
      treeSize: status.treeSize, members: status.members,
    });
  };
  app.get("/cluster/status", clusterStatus);
  app.get("/cluster/info", clusterStatus);
  const members = (c: Context) => c.json({ members: node.status().members });
  app.get("/cluster/members", members);
  app.get("/cluster/nodes", members);
  const leader = (c: Context) => {
    const status = node.status();
    if (status.leaderId === undefined) return c.json({ error: { code: "no_leader", message: "no leader is known" } }, 503);
    return c.json({ leaderId: status.leaderId, leaderAddress: status.leaderAddress ?? null, term: status.term });
  };
  app.get("/cluster/leader", leader);
  app.get("/cluster/leader/info", leader);
  const notClustered = (c: Context) =>
    c.json({ error: { code: "not_clustered", message: "membership changes need a Raft cluster; this node runs single-node" } }, 501);
  app.post("/cluster/members", notClustered);
  app.delete("/cluster/members/:id", notClustered);
  app.post("/cluster/add", notClustered);
  app.delete("/cluster/remove/:id", notClustered);
}
