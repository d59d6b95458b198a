/**
 * Verification routes (API.md "Verification"): checkpoints, the verifier
 * key, inclusion and consistency proofs, key proofs, and the seed's
 * `/verify/{key}` (hex, as the original documentation shows it).
 */
import type { Context, Hono } from "hono";
import { verifyInclusion } from "../merkle/index.ts";
import { toBase64, toHex } from "../encoding.ts";
import { type ApiContext, intQuery, keyFromPath, readBarrier } from "./context.ts";

const SIZE_BOUNDS = { min: 0, max: Number.MAX_SAFE_INTEGER };

function text(c: Context, body: string): Response {
  return c.body(body, 200, { "Content-Type": "text/plain; charset=utf-8" });
}

export function registerVerifyRoutes(app: Hono, api: ApiContext): void {
  const { node, limits } = api;
  app.get("/v1/checkpoint", async (c) => {
    const treeSize = intQuery(c, "treeSize", SIZE_BOUNDS);
    await readBarrier(c, node);
    return text(c, (await node.ledger.checkpoint(treeSize)).note);
  });
  app.get("/v1/checkpoint/key", (c) => text(c, `${node.ledger.checkpoints.verifierKey}\n`));
  app.get("/v1/proof/inclusion", async (c) => {
    const seq = intQuery(c, "seq", SIZE_BOUNDS);
    if (seq === undefined) return c.json({ error: { code: "bad_query", message: "query parameter seq is required" } }, 400);
    await readBarrier(c, node);
    const treeSize = intQuery(c, "treeSize", SIZE_BOUNDS) ?? node.ledger.treeSize;
    const { item, proof } = await node.ledger.inclusionProof(seq, treeSize);
    return c.json({ seq, treeSize, leafHash: toBase64(item.leafHash), proof: proof.map(toBase64) });
  });
  app.get("/v1/proof/consistency", async (c) => {
    await readBarrier(c, node);
    const from = intQuery(c, "from", SIZE_BOUNDS) ?? 0;
    const to = intQuery(c, "to", SIZE_BOUNDS) ?? node.ledger.treeSize;
    const proof = await node.ledger.consistencyProof(from, to);
    return c.json({ from, to, proof: proof.map(toBase64) });
  });
  app.get("/v1/proof/key/*", async (c) => {
    const key = keyFromPath(c, "/v1/proof/key/", limits);
    const version = intQuery(c, "version", { min: 1, max: Number.MAX_SAFE_INTEGER });
    await readBarrier(c, node);
    const proof = await node.ledger.keyProof(key, version);
    return c.json({
      key, version: proof.version, seq: proof.item.entry.seq, entry: toBase64(proof.item.entryBytes),
      leafHash: toBase64(proof.item.leafHash), treeSize: proof.treeSize, rootHash: toBase64(proof.rootHash),
      proof: proof.proof.map(toBase64), checkpoint: proof.checkpoint.note,
    });
  });
  app.get("/verify/*", async (c) => {
    const key = keyFromPath(c, "/verify/", limits);
    await readBarrier(c, node);
    const proof = await node.ledger.keyProof(key);
    let verified = true;
    let error: string | null = null;
    try {
      verifyInclusion(node.ledger.hasher, proof.item.entry.seq, proof.treeSize, proof.item.leafHash, proof.proof, proof.rootHash);
    } catch (failure) {
      verified = false;
      error = String(failure);
    }
    return c.json({
      key,
      verified,
      proof: {
        root_hash: toHex(proof.rootHash), siblings: proof.proof.map(toHex), leaf_hash: toHex(proof.item.leafHash),
        seq: proof.item.entry.seq, tree_size: proof.treeSize, version: proof.version,
      },
      error,
    });
  });
}
