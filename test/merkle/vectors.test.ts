/**
 * Public RFC 6962 / RFC 9162 verifier vectors from transparency-dev/merkle
 * (copied to ../shared/testdata/rfc6962): the verifier must accept exactly the
 * files with wantErr false. Skips visibly, by name, when the directory is absent.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  nobleHasher,
  ProofError,
  RootMismatchError,
  verifyConsistency,
  verifyInclusion,
} from "../../src/merkle/index.ts";

const VECTORS_DIR = fileURLToPath(new URL("../../../shared/testdata/rfc6962", import.meta.url));

function listJson(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listJson(path);
    return name.endsWith(".json") ? [path] : [];
  });
}

function b64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Runs `check`; returns the error it threw (or undefined), asserting it is typed. */
function outcome(check: () => void): Error | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    expect(error instanceof ProofError || error instanceof RootMismatchError).toBe(true);
    return error as Error;
  }
}

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

if (!existsSync(VECTORS_DIR)) {
  test.skip("rfc6962 vectors: ../shared/testdata absent", () => {});
} else {
  const inclusionFiles = listJson(join(VECTORS_DIR, "inclusion"));
  const consistencyFiles = listJson(join(VECTORS_DIR, "consistency"));

  describe("rfc6962 inclusion vectors", () => {
    test("vector files are present", () => {
      expect(inclusionFiles.length).toBeGreaterThan(50);
    });
    for (const file of inclusionFiles) {
      const name = file.slice(VECTORS_DIR.length + 1);
      test(name, () => {
        const v = JSON.parse(readFileSync(file, "utf8")) as InclusionVector;
        const error = outcome(() =>
          verifyInclusion(
            nobleHasher,
            v.leafIdx,
            v.treeSize,
            b64(v.leafHash),
            (v.proof ?? []).map(b64),
            b64(v.root),
          ),
        );
        expect({ desc: v.desc, rejected: error !== undefined, error: error?.message }).toMatchObject({
          desc: v.desc,
          rejected: v.wantErr,
        });
      });
    }
  });

  describe("rfc6962 consistency vectors", () => {
    test("vector files are present", () => {
      expect(consistencyFiles.length).toBeGreaterThan(50);
    });
    for (const file of consistencyFiles) {
      const name = file.slice(VECTORS_DIR.length + 1);
      test(name, () => {
        const v = JSON.parse(readFileSync(file, "utf8")) as ConsistencyVector;
        const error = outcome(() =>
          verifyConsistency(
            nobleHasher,
            v.size1,
            v.size2,
            b64(v.root1),
            b64(v.root2),
            (v.proof ?? []).map(b64),
          ),
        );
        expect({ desc: v.desc, rejected: error !== undefined, error: error?.message }).toMatchObject({
          desc: v.desc,
          rejected: v.wantErr,
        });
      });
    }
  });
}
