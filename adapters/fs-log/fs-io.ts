/**
 * Thin promise wrappers over the callback API of `node:fs`, which Bun, Deno
 * and Node all provide. The callback API is used rather than `fs/promises`
 * because it works on raw fds (no FileHandle objects to leak) and is the
 * cheapest path on all three runtimes. Nothing here retries: an I/O error is
 * handed to the caller, which decides whether the store must stop.
 */
import * as fs from "node:fs";

function call<T>(run: (done: (error: NodeJS.ErrnoException | null, result?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => run((error, result) => (error ? reject(error) : resolve(result as T))));
}

export const openFile = (path: string, flags: string): Promise<number> =>
  call<number>((done) => fs.open(path, flags, 0o644, done));
export const closeFile = (fd: number): Promise<void> => call<void>((done) => fs.close(fd, done));
export const fdatasync = (fd: number): Promise<void> => call<void>((done) => fs.fdatasync(fd, done));
export const fsyncFd = (fd: number): Promise<void> => call<void>((done) => fs.fsync(fd, done));
export const truncateFd = (fd: number, length: number): Promise<void> => call<void>((done) => fs.ftruncate(fd, length, done));
export const fileBytes = async (path: string): Promise<number> => (await call<fs.Stats>((done) => fs.stat(path, done))).size;
export const readWholeFile = (path: string): Promise<Uint8Array> => call<Buffer>((done) => fs.readFile(path, done));
export const listDir = (path: string): Promise<string[]> => call<string[]>((done) => fs.readdir(path, done));
export const renameFile = (from: string, to: string): Promise<void> => call<void>((done) => fs.rename(from, to, done));
export const removeFile = (path: string): Promise<void> => call<void>((done) => fs.rm(path, { force: true }, done));

/** True when `path` exists (any kind of entry). */
export async function exists(path: string): Promise<boolean> {
  try {
    await call<fs.Stats>((done) => fs.stat(path, done));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/** Create `path` (and parents); a no-op when it already exists. */
export const makeDir = (path: string): Promise<void> =>
  call<string | undefined>((done) => fs.mkdir(path, { recursive: true }, done)).then(() => undefined);

/** Write all of `data` at `position`, looping over short writes. */
export async function writeAll(fd: number, data: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const count = await call<number>((done) => fs.write(fd, data, written, data.length - written, position + written, done));
    if (count <= 0) throw new Error(`write returned ${count} at offset ${position + written}`);
    written += count;
  }
}

/**
 * Write all of `data` at `position` with blocking writes. Only for small
 * writes into the page cache (microseconds), where it saves a thread-pool
 * round trip per group commit; the fdatasync that follows stays async.
 */
export function writeAllBlocking(fd: number, data: Uint8Array, position: number): void {
  let written = 0;
  while (written < data.length) {
    const count = fs.writeSync(fd, data, written, data.length - written, position + written);
    if (count <= 0) throw new Error(`write returned ${count} at offset ${position + written}`);
    written += count;
  }
}

/** Read exactly `length` bytes at `position`; a short file is an error for the caller to classify. */
export async function readExact(fd: number, length: number, position: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let read = 0;
  while (read < length) {
    const count = await call<number>((done) => fs.read(fd, out, read, length - read, position + read, done));
    if (count === 0) throw new RangeError(`short read: wanted ${length} bytes at ${position}, got ${read}`);
    read += count;
  }
  return out;
}

/** fsync a directory so that entries created or renamed in it survive a crash. */
export async function fsyncDir(path: string): Promise<void> {
  const fd = await openFile(path, "r");
  try {
    await fsyncFd(fd);
  } finally {
    await closeFile(fd);
  }
}
