/**
 * The follower's half of write forwarding against a scripted transport: one
 * request per leader per event-loop turn (sliced at FORWARDED_COMMANDS_MAX),
 * and which failures make a retry safe (undefined) or leave the outcome
 * unknown (NodeUnavailableError).
 */
import { describe, expect, test } from "bun:test";
import { InvalidKeyError } from "../../src/ledger/errors.ts";
import { NodeUnavailableError, type WriteOutcome } from "../../src/node/index.ts";
import { WriteForwarder } from "../../src/node/write-forwarder.ts";
import { FORWARDED_COMMANDS_MAX, type ForwardAck, type ForwardedWrite } from "../../src/transport/index.ts";

const OUTCOME: WriteOutcome = { applied: [], treeSize: 1 };
const write = (n: number): ForwardedWrite => ({ requestId: `r${n}`, command: { operations: [] } });

/** A forwarder whose transport answers every call with `answer`, and whose pending writes apply with OUTCOME. */
function forwarder(answer: (writes: readonly ForwardedWrite[]) => Promise<ForwardAck[]>) {
  const calls: Array<{ to: number; writes: readonly ForwardedWrite[] }> = [];
  const rejected = new Map<string, unknown>();
  const subject = new WriteForwarder({
    transport: { forward: (to, writes) => (calls.push({ to, writes }), answer(writes)) },
    awaitApplied: () => Promise.resolve(OUTCOME),
    rejectPending: (requestId, error) => rejected.set(requestId, error),
  });
  return { subject, calls, rejected };
}

const acks = (kind: "proposed") => (writes: readonly ForwardedWrite[]) => Promise.resolve(writes.map((): ForwardAck => ({ kind })));

describe("WriteForwarder", () => {
  test("writes of one event-loop turn travel in one request per leader, at most FORWARDED_COMMANDS_MAX each", async () => {
    const { subject, calls } = forwarder(acks("proposed"));
    const outcomes = [
      ...Array.from({ length: FORWARDED_COMMANDS_MAX + 1 }, (_, i) => subject.forward(1, write(i))),
      subject.forward(2, write(-1)),
    ];
    expect(calls).toHaveLength(0);
    expect(await Promise.all(outcomes)).toEqual(outcomes.map(() => OUTCOME));
    expect(calls.map(({ to, writes }) => [to, writes.length])).toEqual([[1, FORWARDED_COMMANDS_MAX], [1, 1], [2, 1]]);
  });

  test("a not-leader ack or a refused connection is safe to retry: undefined, and the pending write is dropped", async () => {
    const notLeader = forwarder(() => Promise.resolve([{ kind: "notLeader", leaderId: 3 }]));
    expect(await notLeader.subject.forward(1, write(0))).toBeUndefined();
    expect(notLeader.rejected.get("r0")).toBeInstanceOf(NodeUnavailableError);
    const refusedConnection = forwarder(() => Promise.reject(Object.assign(new Error("refused"), { code: "ECONNREFUSED" })));
    expect(await refusedConnection.subject.forward(1, write(0))).toBeUndefined();
  });

  test("any other transport failure leaves the outcome unknown", async () => {
    const { subject, rejected } = forwarder(() => Promise.reject(new Error("socket hang up")));
    const error = await subject.forward(1, write(0)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NodeUnavailableError);
    expect((error as NodeUnavailableError).message).toContain("its outcome is unknown");
    expect((error as NodeUnavailableError).retryAfterSeconds).toBe(1);
    expect(rejected.get("r0")).toBe(error);
  });

  test("the leader's refusal comes back as the matching ledger error", async () => {
    const { subject } = forwarder(() => Promise.resolve([{ kind: "refused", code: "invalid_key", message: "bad key" }]));
    await expect(subject.forward(1, write(0))).rejects.toBeInstanceOf(InvalidKeyError);
  });

  test("close rejects queued writes with the refusal and sends nothing", async () => {
    const { subject, calls } = forwarder(acks("proposed"));
    const outcome = subject.forward(1, write(0));
    const refusal = new NodeUnavailableError("node is shutting down", 1);
    subject.close(refusal);
    await expect(outcome).rejects.toBe(refusal);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(calls).toHaveLength(0);
  });

  test("a full pending queue is refused before anything is queued", async () => {
    const subject = new WriteForwarder({
      transport: { forward: () => Promise.reject(new Error("not reached")) },
      awaitApplied: () => undefined,
      rejectPending: () => {},
    });
    await expect(subject.forward(1, write(0))).rejects.toThrow("write queue is full; retry later");
  });
});
