/**
 * Named limits on hostile input, each at its boundary: the limit itself is
 * accepted, one past it is refused with the format error of its layer.
 * Signed notes (NOTE_SIGNATURES_MAX, NOTE_BYTES_MAX) and the peer wire
 * format (MESSAGES_PER_BATCH_MAX, FORWARDED_COMMANDS_MAX, REQUEST_ID_CHARS_MAX).
 */
import { describe, expect, test } from "bun:test";
import { generateSigner, NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX, NoteVerificationError, openNote, signNote, verifierOf } from "../../src/checkpoint/index.ts";
import { type Message } from "../../src/raft/index.ts";
import {
  decodePeerBatch, encodePeerBatch, FORWARDED_COMMANDS_MAX, MESSAGES_PER_BATCH_MAX, REQUEST_ID_CHARS_MAX, WireFormatError, type ForwardedWrite,
} from "../../src/transport/codec.ts";

describe("signed note limits", () => {
  const signer = generateSigner("limits.example/log");
  const other = generateSigner("other.example/log");
  const text = "limits.example/log\n1\nAAAA\n";
  /** `text` signed by `signer`, followed by `extra` signature lines of a key the verifier does not know. */
  const noteWith = (extra: number): string => {
    const otherLine = signNote(other, text).slice(text.length + 1);
    return signNote(signer, text) + otherLine.repeat(extra);
  };
  const failure = (note: string): string => {
    try {
      openNote(note, [verifierOf(signer)]);
      return "opened";
    } catch (error) {
      expect(error).toBeInstanceOf(NoteVerificationError);
      return (error as Error).message;
    }
  };

  test(`${NOTE_SIGNATURES_MAX} signature lines open; one more is malformed`, () => {
    expect(openNote(noteWith(NOTE_SIGNATURES_MAX - 1), [verifierOf(signer)]).text).toBe(text);
    expect(failure(noteWith(NOTE_SIGNATURES_MAX))).toContain("too many signatures");
  });

  test(`a note over ${NOTE_BYTES_MAX} bytes is refused before it is parsed, as text and as bytes`, () => {
    const huge = "x".repeat(NOTE_BYTES_MAX) + "\n\n— a b\n";
    expect(failure(huge)).toContain("note too large");
    expect(() => openNote(new TextEncoder().encode(huge), [verifierOf(signer)])).toThrow("note too large");
    // Multi-byte characters count in bytes, not in string length.
    expect(failure("é".repeat(NOTE_BYTES_MAX / 2 + 1))).toContain("note too large");
  });
});

describe("peer batch limits", () => {
  const heartbeat: Message = { type: "heartbeat", from: 1, to: 2, term: 3, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
  const write = (requestId: string): ForwardedWrite => ({
    requestId,
    command: { operations: [{ op: "put", key: "k", value: new Uint8Array([1]), contentType: "application/octet-stream" }] },
  });
  const refusal = (bytes: Uint8Array): string => {
    try {
      decodePeerBatch(bytes);
      return "decoded";
    } catch (error) {
      expect(error).toBeInstanceOf(WireFormatError);
      return (error as Error).message;
    }
  };

  test(`${MESSAGES_PER_BATCH_MAX} messages decode; one more is refused`, () => {
    expect(decodePeerBatch(encodePeerBatch(Array(MESSAGES_PER_BATCH_MAX).fill(heartbeat), [])).messages).toHaveLength(MESSAGES_PER_BATCH_MAX);
    expect(refusal(encodePeerBatch(Array(MESSAGES_PER_BATCH_MAX + 1).fill(heartbeat), []))).toContain("message batch");
  });

  test(`${FORWARDED_COMMANDS_MAX} forwarded writes decode; one more is refused`, () => {
    const writes = (count: number) => Array.from({ length: count }, (_, i) => write(`r${i}`));
    expect(decodePeerBatch(encodePeerBatch([], writes(FORWARDED_COMMANDS_MAX))).writes).toHaveLength(FORWARDED_COMMANDS_MAX);
    expect(refusal(encodePeerBatch([], writes(FORWARDED_COMMANDS_MAX + 1)))).toContain("forwarded writes");
  });

  test(`a request id of ${REQUEST_ID_CHARS_MAX} characters decodes; a longer or empty one is refused`, () => {
    const longest = "r".repeat(REQUEST_ID_CHARS_MAX);
    expect(decodePeerBatch(encodePeerBatch([], [write(longest)])).writes[0]!.requestId).toBe(longest);
    for (const id of [longest + "r", ""]) expect(refusal(encodePeerBatch([], [write(id)]))).toContain("forwarded request id");
  });
});
