/**
 * The Ready loop never loses a kick: work added (and kicked) at any microtask
 * depth after a step, including the instant after the loop's last check for
 * work, is processed without waiting for another kick (the next Raft tick).
 */
import { describe, expect, test } from "bun:test";
import { ReadyLoop } from "../../src/node/ready-loop.ts";

const MICROTASK_DEPTHS_MAX = 40;

function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

describe("ReadyLoop", () => {
  test("a kick at every microtask depth after the last step is processed", async () => {
    for (let depth = 0; depth < MICROTASK_DEPTHS_MAX; depth++) {
      let work = 1;
      let steps = 0;
      const loop = new ReadyLoop({
        hasWork: () => work > 0,
        step: async () => {
          await Promise.resolve();
          work--;
          steps++;
        },
        stopped: () => false,
        onError: (error) => {
          throw error;
        },
      });
      let hops = 0;
      const later = () => {
        if (hops++ < depth) return queueMicrotask(later);
        work++;
        loop.kick();
      };
      loop.kick();
      queueMicrotask(later);
      await macrotask();
      await loop.idle();
      expect({ depth, work, steps }).toEqual({ depth, work: 0, steps: 2 });
    }
  });

  test("runs one step at a time and stops when told, reporting a failed step", async () => {
    let concurrent = 0;
    let peak = 0;
    let work = 5;
    const errors: unknown[] = [];
    const loop = new ReadyLoop({
      hasWork: () => work > 0,
      step: async () => {
        peak = Math.max(peak, ++concurrent);
        await macrotask();
        concurrent--;
        if (--work === 2) throw new Error("step failed");
      },
      stopped: () => false,
      onError: (error) => errors.push(error),
    });
    for (let i = 0; i < 10; i++) loop.kick();
    await loop.idle();
    expect(peak).toBe(1);
    expect(work).toBe(2);
    expect(errors.map((error) => (error as Error).message)).toEqual(["step failed"]);
  });
});
