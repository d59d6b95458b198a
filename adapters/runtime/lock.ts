/**
 * One process per data directory: a `LOCK` file holding the owner's pid,
 * created exclusively. Two ledger processes on one directory would each
 * keep their own Merkle frontier and sequence and corrupt the ledger, so a
 * second start refuses with the owner's pid. A lock left by a process that
 * no longer exists (kill -9, power cut) is taken over.
 */
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

/** File name of the lock inside the data directory. */
export const LOCK_FILE = "LOCK";

/** Raised when another live process holds the data directory. */
export class DataDirLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(`data directory ${dir} is in use by process ${pid}; stop it first or choose another --data-dir`);
    this.name = "DataDirLockedError";
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Take the lock on `dir` (created if missing); resolves to a release function. */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, "wx", 0o644);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = Number.parseInt((await readFile(path, "utf8").catch(() => "")).trim(), 10);
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
      throw new DataDirLockedError(dir, owner);
    }
    await rm(path, { force: true });
  }
  throw new Error(`could not take the lock ${path}`);
}
