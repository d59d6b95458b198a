/**
 * A stand-in for "bun:test" under `deno test`, just wide enough for the
 * storage conformance suite and the Deno-side adapter tests: describe/test
 * map onto Deno.test, afterEach hooks run inside each test, and `expect` has
 * the matchers those files use. deno.json next to this file maps "bun:test"
 * here. It is test scaffolding only; nothing in src/ or adapters/ imports it.
 */
type Hook = () => void | Promise<void>;
interface Scope {
  name: string;
  afterEach: Hook[];
}

declare const Deno: {
  test(options: { name: string; fn: () => Promise<void>; sanitizeOps?: boolean; sanitizeResources?: boolean }): void;
};

const scopes: Scope[] = [];

export function describe(name: string, body: () => void): void {
  scopes.push({ name, afterEach: [] });
  try {
    body();
  } finally {
    scopes.pop();
  }
}

export function afterEach(hook: Hook): void {
  if (scopes.length === 0) throw new Error("afterEach outside describe is not supported by the shim");
  scopes[scopes.length - 1]!.afterEach.push(hook);
}

export function test(name: string, body: () => void | Promise<void>, _timeoutMs?: number): void {
  const fullName = [...scopes.map((scope) => scope.name), name].join(" > ");
  const hooks = scopes.flatMap((scope) => scope.afterEach).reverse();
  Deno.test({
    name: fullName,
    // Deno KV and fs keep background work alive between awaits; the suites close what they open.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      try {
        await body();
      } finally {
        for (const hook of hooks) await hook();
      }
    },
  });
}
export const it = test;

function show(value: unknown): string {
  if (value instanceof Uint8Array) return `Uint8Array[${Array.from(value.subarray(0, 32)).join(",")}${value.length > 32 ? ",..." : ""}] (${value.length} bytes)`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Structural equality in the spirit of bun's toEqual (typed arrays, arrays, plain objects). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    if (a.constructor !== b.constructor || a.byteLength !== b.byteLength) return false;
    const left = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const right = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < left.length; i++) if (left[i] !== right[i]) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const keysA = Object.keys(a).filter((key) => (a as Record<string, unknown>)[key] !== undefined);
  const keysB = Object.keys(b).filter((key) => (b as Record<string, unknown>)[key] !== undefined);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) => deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

type ErrorMatcher = (new (...args: never[]) => unknown) | string | RegExp | undefined;

function matchesError(error: unknown, expected: ErrorMatcher): boolean {
  if (expected === undefined) return true;
  const message = String((error as Error)?.message ?? error);
  if (typeof expected === "string") return message.includes(expected);
  if (expected instanceof RegExp) return expected.test(message);
  return error instanceof expected;
}

function fail(message: string): never {
  throw new Error(`expect: ${message}`);
}

export function expect(actual: unknown) {
  const rejection = async (): Promise<unknown> => {
    try {
      await actual;
    } catch (error) {
      return error;
    }
    return fail(`expected a rejection, but ${show(actual)} resolved`);
  };
  return {
    toBe: (expected: unknown) => void (Object.is(actual, expected) || fail(`${show(actual)} to be ${show(expected)}`)),
    toEqual: (expected: unknown) => void (deepEqual(actual, expected) || fail(`${show(actual)} to equal ${show(expected)}`)),
    toBeUndefined: () => void (actual === undefined || fail(`${show(actual)} to be undefined`)),
    toBeDefined: () => void (actual !== undefined || fail("value to be defined")),
    toBeGreaterThan: (bound: number) => void ((actual as number) > bound || fail(`${show(actual)} to be > ${bound}`)),
    toBeLessThan: (bound: number) => void ((actual as number) < bound || fail(`${show(actual)} to be < ${bound}`)),
    toBeInstanceOf: (type: new (...args: never[]) => unknown) =>
      void (actual instanceof type || fail(`${show(actual)} to be an instance of ${type.name}`)),
    toThrow: (expected?: ErrorMatcher) => {
      try {
        (actual as () => unknown)();
      } catch (error) {
        if (!matchesError(error, expected)) fail(`thrown ${String(error)} to match ${String(expected)}`);
        return;
      }
      fail("function to throw");
    },
    rejects: {
      toThrow: async (expected?: ErrorMatcher) => {
        const error = await rejection();
        if (!matchesError(error, expected)) fail(`rejection ${String(error)} to match ${String(expected)}`);
      },
      toBeInstanceOf: async (type: new (...args: never[]) => unknown) => {
        const error = await rejection();
        if (!(error instanceof type)) fail(`rejection ${String(error)} to be an instance of ${type.name}`);
      },
    },
  };
}
