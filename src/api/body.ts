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
    // HTTP framing holds the body to its declared length, so reading it whole is bounded by the check above
    // (and the runtime's one-shot read is much cheaper than pulling chunks through a stream reader). Not when
    // a Transfer-Encoding is also present: that framing wins over Content-Length, so the stream path caps it.
    if (!request.headers.has("transfer-encoding")) {
      const body = await readWhole(request);
      // Only a Request built in-process can disagree with its own header; refuse it rather than trust either.
      if (body.length !== length) throw new HttpError(400, "bad_content_length", `body has ${body.length} bytes, Content-Length says ${length}`);
      return body;
    }
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

async function readWhole(request: Request): Promise<Uint8Array> {
  try {
    return new Uint8Array(await request.arrayBuffer());
  } catch (error) {
    throw new HttpError(400, "bad_body", `could not read the request body: ${String(error)}`);
  }
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
