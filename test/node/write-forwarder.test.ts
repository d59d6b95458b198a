/**
 * The follower's half of write forwarding against a scripted transport: one
 * request in flight per leader, the writes behind it batched into the next
 * (sliced at FORWARDED_COMMANDS_MAX),
 * and which failures make a retry safe (undefined) or leave the outcome
 * unknown (NodeUnavailableError).
 */
import { describe, expect, test } from "bun:test";
import { until } from "../helpers/poll.ts";
import { InvalidKeyError } from "../../src/ledger/errors.ts";
import { NodeUnavailableError, type WriteOutcome } from "../../src/node/index.ts";
import { FORWARDS_IN_FLIGHT_MAX, WriteForwarder } from "../../src/node/write-forwarder.ts";
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

/** Let `count` event-loop turns pass (the forwarder batches per turn). */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

const acks = (kind: "proposed") => (writes: readonly ForwardedWrite[]) => Promise.resolve(writes.map((): ForwardAck => ({ kind })));

describe("WriteForwarder", () => {
  test("writes of one event-loop turn travel in one request per leader, at most FORWARDED_COMMANDS_MAX each (the rest after its answer)", async () => {
    const { subject, calls } = forwarder(acks("proposed"));
    const outcomes = [
      ...Array.from({ length: FORWARDED_COMMANDS_MAX + 1 }, (_, i) => subject.forward(1, write(i))),
      subject.forward(2, write(-1)),
    ];
    expect(calls).toHaveLength(0);
    expect(await Promise.all(outcomes)).toEqual(outcomes.map(() => OUTCOME));
    expect(calls.map(({ to, writes }) => [to, writes.length])).toEqual([[1, FORWARDED_COMMANDS_MAX], [2, 1], [1, 1]]);
  });

  test(`with ${FORWARDS_IN_FLIGHT_MAX} request out to a leader, later writes wait for its answer and then travel together`, async () => {
    expect(FORWARDS_IN_FLIGHT_MAX).toBe(1);
    const answers: Array<(outcome: "ack" | "fail") => void> = [];
    const { subject, calls } = forwarder((writes) => new Promise<ForwardAck[]>((resolve, reject) => {
      answers.push((outcome) => (outcome === "ack" ? resolve(writes.map((): ForwardAck => ({ kind: "proposed" }))) : reject(new Error("socket hang up"))));
    }));
    const sent = (count: number) => until(`${count} forward requests`, () => (calls.length >= count ? true : undefined), 2_000, 1);
    const settled: string[] = [];
    const forward = (lead: number, n: number) => subject.forward(lead, write(n)).then(() => settled.push(`r${n}`), () => settled.push(`r${n} failed`));
    const first = forward(1, 0);
    await sent(1);
    const waiting = [forward(1, 1), forward(1, 2), forward(2, 3)];
    // The other leader's write goes at once; leader 1's two wait behind its request.
    await sent(2);
    await turns(3);
    expect(calls.map(({ to, writes }) => [to, writes.map(({ requestId }) => requestId)])).toEqual([[1, ["r0"]], [2, ["r3"]]]);
    answers[0]!("ack");
    await first;
    await sent(3);
    expect(calls[2]).toEqual({ to: 1, writes: [write(1), write(2)] });
    // A failed request still releases the queue: what waited behind it is sent.
    const behindFailure = forward(1, 4);
    answers[2]!("fail");
    await sent(4);
    expect(calls[3]!.writes).toEqual([write(4)]);
    answers[1]!("ack");
    answers[3]!("ack");
    await Promise.all([...waiting, behindFailure]);
    expect(settled.sort()).toEqual(["r0", "r1 failed", "r2 failed", "r3", "r4"]);
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
