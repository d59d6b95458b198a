/**
 * Request bodies read with a byte cap: a declared Content-Length over the
 * cap is refused before any byte is read, and a streamed body is cut off the
 * moment it passes the cap, so no request can make the server buffer more
 * than the limit.
 */
import { HttpError } from "./errors.ts";

/** Read the whole body of `request`, refusing more than `limitBytes` with a 413. */
export async function readBodyCapped(request: Request, limitBytes: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    const length = Number(declared);
    if (!/^\d+$/.test(declared.trim()) || !Number.isSafeInteger(length)) {
      throw new HttpError(400, "bad_content_length", "Content-Length is not a non-negative integer");
    }
    if (length > limitBytes) throw tooLarge(limitBytes);
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limitBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limitBytes);
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, "bad_body", `could not read the request body: ${String(error)}`);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function tooLarge(limitBytes: number): HttpError {
  return new HttpError(413, "body_too_large", `request body exceeds ${limitBytes} bytes`);
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** Decode UTF-8 strictly; invalid bytes are a 400, never replacement characters. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new HttpError(400, "bad_utf8", `${what} is not valid UTF-8`);
  }
}

/** Parse a JSON body; malformed JSON is a 400. */
export function parseJson(bytes: Uint8Array): unknown {
  const text = decodeUtf8(bytes, "request body");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, "bad_json", `request body is not valid JSON: ${(error as Error).message}`);
  }
}
