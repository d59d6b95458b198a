/**
 * The client side of `--join`: a new cluster node asks a member (any member;
 * followers forward to the leader) to add it, over the member's HTTP API.
 * It retries while the cluster cannot answer (no leader, an unknown outcome,
 * another membership change still pending) and gives up at once on a
 * refusal that a retry cannot change (a conflicting id, a removed id, a bad
 * request), which the caller reports and exits on.
 */
import { peerUrl } from "../transport/index.ts";
import { type NewMember } from "./index.ts";

/** Limits of one join. */
export interface JoinLimits {
  /** How long to keep asking before giving up. */
  timeoutMs: number;
  /** Pause between two attempts. */
  retryDelayMs: number;
}

export const JOIN_DEFAULTS: JoinLimits = { timeoutMs: 60_000, retryDelayMs: 500 };

/** The member at the join URL refused this node for good (status and body say why). */
export class JoinRefusedError extends Error {
  override name = "JoinRefusedError";
  constructor(readonly status: number, body: string) {
    super(`refused (${status}): ${body}`);
  }
}

/** Whether an answer may change on a retry: 503, or 409 because another change is being applied. */
function retryable(status: number, body: string): boolean {
  if (status === 503) return true;
  if (status !== 409) return false;
  try {
    return (JSON.parse(body) as { error?: { code?: unknown } }).error?.code === "change_pending";
  } catch {
    return false;
  }
}

/**
 * Ask the member at `url` to add `member`. Resolves with whether this added
 * it (false: it already was a member, e.g. a retried join). Throws
 * JoinRefusedError on a final refusal, and an Error when no answer came
 * within `limits.timeoutMs`. `onRetry` hears each failed attempt.
 */
export async function joinCluster(url: string, member: NewMember, limits: JoinLimits = JOIN_DEFAULTS, onRetry: (problem: string) => void = () => {}): Promise<boolean> {
  const body = JSON.stringify({ id: member.id, client_address: member.clientAddress, raft_address: member.raftAddress });
  const deadline = Date.now() + limits.timeoutMs;
  for (;;) {
    let problem: string;
    try {
      const response = await fetch(`${peerUrl(url)}/cluster/members`, {
        method: "POST", body, headers: { "Content-Type": "application/json" }, signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      });
      const text = await response.text();
      if (response.ok) return response.status === 201;
      if (!retryable(response.status, text)) throw new JoinRefusedError(response.status, text);
      problem = `${response.status} ${text}`;
    } catch (error) {
      if (error instanceof JoinRefusedError) throw error;
      problem = (error as Error).message;
    }
    if (Date.now() >= deadline) throw new Error(`no answer from ${url} within ${limits.timeoutMs} ms (last: ${problem})`);
    onRetry(problem);
    await new Promise((resolve) => setTimeout(resolve, limits.retryDelayMs));
  }
}
