/**
 * Signed notes and checkpoints: public C2SP / sumdb note vectors (from
 * ../shared/testdata/signed-note, skipped visibly by name when absent), our own
 * sign/open round trips, and rejection of malformed notes and keys with typed
 * errors.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  CheckpointFormatError,
  computeKeyId,
  decodeBase64,
  encodeBase64,
  formatCheckpoint,
  formatKeyId,
  formatSignerKey,
  generateSigner,
  KeyFormatError,
  type NoteFailure,
  NoteVerificationError,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signerFromSeed,
  signNote,
  verifierKeyString,
  verifierOf,
} from "../../src/checkpoint/index.ts";

const VECTORS_FILE = fileURLToPath(new URL("../../../shared/testdata/signed-note/vectors.json", import.meta.url));

interface NoteVector {
  verifierKey: string;
  note: string;
  text: string | null;
  valid: boolean;
}

/** Asserts `run` throws a NoteVerificationError with `reason`. */
function expectNoteFailure(run: () => unknown, reason: NoteFailure): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(NoteVerificationError);
    expect((error as NoteVerificationError).reason).toBe(reason);
    return;
  }
  throw new Error(`expected NoteVerificationError ${reason}, nothing was thrown`);
}

if (!existsSync(VECTORS_FILE)) {
  test.skip("signed-note vectors: ../shared/testdata absent", () => {});
} else {
  const vectors = (JSON.parse(readFileSync(VECTORS_FILE, "utf8")) as { vectors: NoteVector[] }).vectors;

  describe("signed-note vectors", () => {
    test("vectors present, with valid and invalid cases", () => {
      expect(vectors.some((v) => v.valid)).toBe(true);
      expect(vectors.some((v) => !v.valid)).toBe(true);
    });
    vectors.forEach((vector, i) => {
      test(`vector ${i} (${vector.valid ? "valid" : "tampered"}): ${vector.verifierKey.split("+")[0]}`, () => {
        const verifier = parseVerifierKey(vector.verifierKey);
        const [name, idText, keyText] = vector.verifierKey.split("+") as [string, string, string];
        expect(verifier.name).toBe(name);
        expect(formatKeyId(computeKeyId(name, decodeBase64(keyText)!.subarray(1)))).toBe(idText);
        expect(verifierKeyString(verifier)).toBe(vector.verifierKey);
        if (vector.valid) {
          const opened = openNote(vector.note, [verifier]);
          expect(opened.text).toBe(vector.text!);
          expect(opened.verifiedBy).toEqual([verifier]);
          expect(openNote(new TextEncoder().encode(vector.note), [verifier]).text).toBe(vector.text!);
        } else {
          expectNoteFailure(() => openNote(vector.note, [verifier]), "invalid-signature");
        }
      });
    });
    test("a note signed only by an unknown key is refused", () => {
      const valid = vectors.find((v) => v.valid)!;
      const other = verifierOf(generateSigner("someone.else"));
      expectNoteFailure(() => openNote(valid.note, [other]), "unverified");
      expectNoteFailure(() => openNote(valid.note, []), "unverified");
    });
    test("a known key with a different key id does not verify", () => {
      const valid = vectors.find((v) => v.valid)!;
      const verifier = parseVerifierKey(valid.verifierKey);
      expectNoteFailure(() => openNote(valid.note, [{ ...verifier, keyId: verifier.keyId ^ 1 }]), "unverified");
    });
  });
}

describe("checkpoint signing", () => {
  const signer = generateSigner("ledger.example.com/test");
  const verifier = parseVerifierKey(verifierKeyString(signer));
  const rootHash = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
  const checkpoint = { origin: "ledger.example.com/test", treeSize: 12345, rootHash };

  test("format matches the C2SP layout", () => {
    expect(formatCheckpoint(checkpoint)).toBe(`ledger.example.com/test\n12345\n${encodeBase64(rootHash)}\n`);
  });

  test("sign, open with own verifier, parse round trip", () => {
    const note = signCheckpoint(signer, checkpoint);
    expect(note).toMatch(/^ledger\.example\.com\/test\n12345\n[A-Za-z0-9+/]{43}=\n\n\u2014 ledger\.example\.com\/test [A-Za-z0-9+/]{91}=\n$/);
    const opened = openNote(note, [verifier]);
    expect(opened.text).toBe(formatCheckpoint(checkpoint));
    const parsed = parseCheckpoint(opened.text);
    expect(parsed.origin).toBe(checkpoint.origin);
    expect(parsed.treeSize).toBe(checkpoint.treeSize);
    expect(Array.from(parsed.rootHash)).toEqual(Array.from(rootHash));
    const again = openCheckpoint(note, [verifier], checkpoint.origin);
    expect(again.treeSize).toBe(12345);
    expect(() => openCheckpoint(note, [verifier], "other.origin")).toThrow(CheckpointFormatError);
  });

  test("extension lines round trip", () => {
    const text = formatCheckpoint({ ...checkpoint, extensions: ["timestamp 1700000000000"] });
    expect(parseCheckpoint(text).extensions).toEqual(["timestamp 1700000000000"]);
  });

  test("tampered checkpoint text or signature fails", () => {
    const note = signCheckpoint(signer, checkpoint);
    expectNoteFailure(() => openNote(note.replace("12345", "12346"), [verifier]), "invalid-signature");
    const lines = note.split("\n");
    const sigLine = lines[4]!;
    const payload = decodeBase64(sigLine.split(" ")[2]!)!;
    payload[10]! ^= 1;
    lines[4] = `${sigLine.split(" ").slice(0, 2).join(" ")} ${encodeBase64(payload)}`;
    expectNoteFailure(() => openNote(lines.join("\n"), [verifier]), "invalid-signature");
  });

  test("extra signatures from unknown keys are reported, not trusted", () => {
    const other = generateSigner("witness.example");
    const body = formatCheckpoint(checkpoint);
    const own = signNote(signer, body);
    const witness = signNote(other, body).slice(body.length + 1);
    const both = own + witness;
    const opened = openNote(both, [verifier]);
    expect(opened.verifiedBy.map((v) => v.name)).toEqual([signer.name]);
    expect(opened.unverified).toEqual([{ name: other.name, keyId: other.keyId }]);
    expect(openNote(both, [verifier, verifierOf(other)]).verifiedBy.length).toBe(2);
  });

  test("signer key string round trips and yields the same signatures", () => {
    const text = formatSignerKey(signer);
    expect(text.startsWith(`PRIVATE+KEY+${signer.name}+${formatKeyId(signer.keyId)}+`)).toBe(true);
    const parsed = parseSignerKey(text);
    expect(parsed.keyId).toBe(signer.keyId);
    expect(signNote(parsed, "hello\n")).toBe(signNote(signer, "hello\n")); // Ed25519 is deterministic
  });

  test("keys whose base64 contains '+' round trip (64 fixed seeds)", () => {
    let withPlus = 0;
    for (let i = 0; i < 64; i++) {
      const fixed = signerFromSeed("seeded", new Uint8Array(32).fill(i));
      const verifierText = verifierKeyString(fixed);
      const signerText = formatSignerKey(fixed);
      if (verifierText.split("+").length > 3 || signerText.split("+").length > 5) withPlus++;
      expect(parseVerifierKey(verifierText).keyId).toBe(fixed.keyId);
      expect(parseSignerKey(signerText).keyId).toBe(fixed.keyId);
    }
    expect(withPlus).toBeGreaterThan(0);
  });

  test("signer from a fixed seed is deterministic across runs", () => {
    const fixed = signerFromSeed("fixed", new Uint8Array(32).fill(7));
    expect(verifierKeyString(fixed)).toBe(verifierKeyString(signerFromSeed("fixed", new Uint8Array(32).fill(7))));
    expect(openNote(signNote(fixed, "x\n"), [verifierOf(fixed)]).text).toBe("x\n");
  });
});

describe("malformed notes are rejected", () => {
  const signer = signerFromSeed("k", new Uint8Array(32).fill(1));
  const verifier = verifierOf(signer);
  const good = signNote(signer, "hello\n");
  const sigLine = good.slice("hello\n\n".length, -1);

  const cases: Array<[string, string | Uint8Array]> = [
    ["no trailing newline", good.slice(0, -1)],
    ["no blank line", `hello\n${sigLine}\n`],
    ["empty signature block", "hello\n\n"],
    ["control character in text", `hel\u0001lo\n\n${sigLine}\n`],
    ["carriage return in text", `hello\r\n\n${sigLine}\n`],
    ["lone surrogate in text", `hel\ud800lo\n\n${sigLine}\n`],
    ["invalid UTF-8 bytes", Uint8Array.from([0x68, 0xff, 0x0a, ...new TextEncoder().encode(`\n${sigLine}\n`)])],
    ["hyphen instead of em dash", `hello\n\n- k ${sigLine.split(" ")[2]}\n`],
    ["missing signature", "hello\n\n\u2014 k\n"],
    ["bad base64", `hello\n\n\u2014 k ${sigLine.split(" ")[2]!.slice(1)}\n`],
    ["signature payload too short", `hello\n\n\u2014 k AAAAAA==\n`],
    ["key name with plus", `hello\n\n\u2014 k+x ${sigLine.split(" ")[2]}\n`],
    ["more than 100 signatures", `hello\n\n${`${sigLine}\n`.repeat(101)}`],
    ["empty note", ""],
  ];
  for (const [name, note] of cases) {
    test(name, () => expectNoteFailure(() => openNote(note, [verifier]), "malformed"));
  }

  test("the good note opens (the cases above differ only in the defect)", () => {
    expect(openNote(good, [verifier]).text).toBe("hello\n");
    expect(openNote(`hello\n\n${`${sigLine}\n`.repeat(100)}`, [verifier]).text).toBe("hello\n");
  });

  test("signNote refuses text without trailing newline", () => {
    expectNoteFailure(() => signNote(signer, "hello"), "malformed");
  });
});

describe("malformed keys are rejected", () => {
  const signer = signerFromSeed("k.example", new Uint8Array(32).fill(3));
  const verifierText = verifierKeyString(signer);
  const [name, idText, keyText] = verifierText.split("+") as [string, string, string];

  const verifierCases: Array<[string, string]> = [
    ["too few parts", `${name}+${idText}`],
    ["too many parts", `${verifierText}+x`],
    ["wrong key id", `${name}+${(Number.parseInt(idText, 16) ^ 1).toString(16).padStart(8, "0")}+${keyText}`],
    ["short key id", `${name}+${idText.slice(1)}+${keyText}`],
    ["empty name", `+${idText}+${keyText}`],
    ["name with space", `k example+${idText}+${keyText}`],
    ["bad base64", `${name}+${idText}+${keyText.slice(1)}`],
    ["wrong algorithm", `${name}+${idText}+${encodeBase64(Uint8Array.of(2, ...signer.publicKey))}`],
    ["short key", `${name}+${idText}+${encodeBase64(Uint8Array.of(1, ...signer.publicKey.subarray(1)))}`],
  ];
  for (const [caseName, text] of verifierCases) {
    test(`verifier key: ${caseName}`, () => expect(() => parseVerifierKey(text)).toThrow(KeyFormatError));
  }
  test("verifier key: the unmodified key parses", () => {
    expect(parseVerifierKey(verifierText).keyId).toBe(signer.keyId);
  });

  const signerText = formatSignerKey(signer);
  const signerCases: Array<[string, string]> = [
    ["missing PRIVATE+KEY", signerText.slice("PRIVATE+KEY+".length)],
    ["wrong key id", signerText.replace(`+${idText}+`, "+00000000+")],
    ["truncated seed", signerText.slice(0, -4)],
    ["verifier key given", verifierText],
  ];
  for (const [caseName, text] of signerCases) {
    test(`signer key: ${caseName}`, () => expect(() => parseSignerKey(text)).toThrow(KeyFormatError));
  }
  test("generateSigner refuses an invalid name", () => {
    expect(() => generateSigner("a+b")).toThrow(KeyFormatError);
    expect(() => generateSigner("")).toThrow(KeyFormatError);
  });
});

describe("malformed checkpoints are rejected", () => {
  const root = encodeBase64(new Uint8Array(32).fill(9));
  const cases: Array<[string, string]> = [
    ["no trailing newline", `o\n1\n${root}`],
    ["missing root line", "o\n1\n"],
    ["leading zero", `o\n01\n${root}\n`],
    ["negative size", `o\n-1\n${root}\n`],
    ["hex size", `o\n0x1\n${root}\n`],
    ["size beyond 2^53", `o\n9007199254740993\n${root}\n`],
    ["short root", `o\n1\n${encodeBase64(new Uint8Array(31))}\n`],
    ["unpadded root", `o\n1\n${root.replace(/=+$/, "")}\n`],
    ["url-safe base64 root", `o\n1\n${encodeBase64(new Uint8Array(32).fill(0xfb))}\n`.replace(/\+/g, "-")],
    ["empty origin", `\n1\n${root}\n`],
    ["empty extension line", `o\n1\n${root}\n\n`],
  ];
  for (const [name, text] of cases) {
    test(name, () => expect(() => parseCheckpoint(text)).toThrow(CheckpointFormatError));
  }
  test("zero size and the unmodified body parse", () => {
    expect(parseCheckpoint(`o\n0\n${root}\n`).treeSize).toBe(0);
    expect(parseCheckpoint(`o\n1\n${root}\n`).treeSize).toBe(1);
  });
  test("format refuses invalid fields", () => {
    const rootHash = new Uint8Array(32);
    expect(() => formatCheckpoint({ origin: "a\nb", treeSize: 1, rootHash })).toThrow(CheckpointFormatError);
    expect(() => formatCheckpoint({ origin: "o", treeSize: -1, rootHash })).toThrow(CheckpointFormatError);
    expect(() => formatCheckpoint({ origin: "o", treeSize: 1.5, rootHash })).toThrow(CheckpointFormatError);
    expect(() => formatCheckpoint({ origin: "o", treeSize: 1, rootHash: new Uint8Array(31) })).toThrow(
      CheckpointFormatError,
    );
  });
});
