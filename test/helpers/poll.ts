/** Waiting for a condition in tests: poll with a deadline, never a fixed sleep. */

/** Default interval between probes. */
export const POLL_INTERVAL_MS = 25;

/**
 * Probe until it returns something other than undefined (a throw counts as undefined) and return that;
 * throw naming `what` once `deadlineMs` has passed.
 */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, deadlineMs: number, intervalMs = POLL_INTERVAL_MS): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = await probe();
    } catch {
      value = undefined;
    }
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
