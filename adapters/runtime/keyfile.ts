/**
 * The checkpoint signing key on disk: created on first start with mode 0600
 * (written to a temp file, fsynced, renamed), read and validated afterwards.
 * Uses node:fs, which Bun, Deno and Node all provide.
 */
import { mkdir, open, readFile, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import { formatSignerKey, generateSigner, parseSignerKey, type Signer } from "../../src/checkpoint/index.ts";

/** File name of the signing key inside the data directory. */
export const SIGNING_KEY_FILE = "checkpoint.key";

/** Load the signer from `path`, or create one named `keyName` there if the file does not exist. */
export async function loadOrCreateSigner(path: string, keyName: string): Promise<{ signer: Signer; created: boolean }> {
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  if (text !== undefined) {
    const mode = (await stat(path)).mode & 0o777;
    if ((mode & 0o077) !== 0) console.warn(`warning: ${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    try {
      return { signer: parseSignerKey(text.trim()), created: false };
    } catch (error) {
      throw new Error(`signing key file ${path} is malformed: ${(error as Error).message}`);
    }
  }
  const signer = generateSigner(keyName);
  await mkdir(join(path, ".."), { recursive: true });
  const temp = `${path}.tmp`;
  const handle = await open(temp, "w", 0o600);
  try {
    await handle.writeFile(`${formatSignerKey(signer)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await syncDirectory(join(path, ".."));
  return { signer, created: true };
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
