/**
 * Cluster and operations routes (API.md "Cluster and operations"): health,
 * metrics in JSON and Prometheus text, cluster status, members and leader
 * (with the seeds' aliases), and membership changes (JSON bodies checked
 * with valibot; a node that is not part of a Raft cluster answers 501).
 */
import type { Context, Hono } from "hono";
import * as v from "valibot";
import { type ApiContext } from "./context.ts";
import { readBodyCapped, parseJson } from "./body.ts";
import { HttpError } from "./errors.ts";
import { type Gauges } from "./metrics.ts";
import { type MembershipAdmin } from "../node/index.ts";
import { isMemberAddress, MEMBER_ADDRESS_CHARS_MAX, MEMBER_ID_MAX } from "../node/members.ts";

/** Largest membership request body. */
export const MEMBERSHIP_BODY_BYTES_MAX = 4096;

const AddressSchema = v.pipe(v.string(), v.maxLength(MEMBER_ADDRESS_CHARS_MAX), v.check(isMemberAddress, "must be host:port or an http(s) URL"));
const MemberIdSchema = v.pipe(
  v.union([v.number(), v.pipe(v.string(), v.regex(/^[1-9]\d{0,9}$/), v.transform(Number))]),
  v.integer(), v.minValue(1), v.maxValue(MEMBER_ID_MAX),
);
const NewMemberSchema = v.strictObject({
  id: MemberIdSchema,
  client_address: AddressSchema,
  raft_address: AddressSchema,
});

/** A member id from the path: 1..2^31 in plain decimal. */
function memberIdParam(c: Context): number {
  const raw = c.req.param("id") ?? "";
  const id = Number(raw);
  if (!/^[1-9]\d{0,9}$/.test(raw) || id > MEMBER_ID_MAX) throw new HttpError(400, "bad_member_id", `member id must be an integer in [1, ${MEMBER_ID_MAX}]`);
  return id;
}

function registerMembershipRoutes(app: Hono, admin: MembershipAdmin): void {
  const add = async (c: Context) => {
    const body = parseJson(await readBodyCapped(c.req.raw, MEMBERSHIP_BODY_BYTES_MAX));
    const parsed = v.safeParse(NewMemberSchema, body);
    if (!parsed.success) {
      const issue = parsed.issues[0]!;
      throw new HttpError(400, "bad_member", `${v.getDotPath(issue) ?? "body"}: ${issue.message} (want {"id", "client_address", "raft_address"})`);
    }
    const { id, client_address: clientAddress, raft_address: raftAddress } = parsed.output;
    const outcome = await admin.addMember({ id, clientAddress, raftAddress });
    return c.json({ id: String(id), changed: outcome.changed, members: outcome.members }, outcome.changed ? 201 : 200);
  };
  const remove = async (c: Context) => {
    const id = memberIdParam(c);
    const outcome = await admin.removeMember(id);
    return c.json({ id: String(id), removed: true, members: outcome.members });
  };
  app.post("/cluster/members", add);
  app.post("/cluster/add", add);
  app.delete("/cluster/members/:id", remove);
  app.delete("/cluster/remove/:id", remove);
}

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
    snapshot: status.snapshot,
    replication: status.replication,
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
      treeSize: status.treeSize, members: status.members, ...(status.snapshot === undefined ? {} : { snapshot: status.snapshot }),
      ...(status.replication === undefined ? {} : { replication: status.replication }),
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
  if (node.membership !== undefined) {
    registerMembershipRoutes(app, node.membership);
    return;
  }
  const notClustered = (c: Context) =>
    c.json({ error: { code: "not_clustered", message: "membership changes need a Raft cluster; this node runs single-node" } }, 501);
  app.post("/cluster/members", notClustered);
  app.delete("/cluster/members/:id", notClustered);
  app.post("/cluster/add", notClustered);
  app.delete("/cluster/remove/:id", notClustered);
}
