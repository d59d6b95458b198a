/**
 * The member book: address checks, the change rule (same as the core's, plus
 * addresses and removed ids), and the wire form read back from peers and disk.
 */
import { describe, expect, test } from "bun:test";
import {
  emptyMembership, encodeAddressContext, foundingMembership, isMemberAddress, isMemberId, MEMBER_ADDRESS_CHARS_MAX, MEMBER_ID_MAX, membershipAfter,
  membershipFromWire, membershipToWire,
} from "../../src/node/members.ts";
import { WireFormatError } from "../../src/transport/codec.ts";

const at = (n: number) => ({ clientAddress: `127.0.0.1:${8000 + n}`, raftAddress: `127.0.0.1:${9000 + n}` });

describe("member book", () => {
  test("addresses are host:port or a bare http(s) URL", () => {
    for (const good of ["127.0.0.1:9001", "node-1.example.com:80", "[::1]:9000", "http://10.0.0.1:9000", "https://raft.example/"]) {
      expect({ good, ok: isMemberAddress(good) }).toEqual({ good, ok: true });
    }
    for (const bad of ["", "host", "host:", ":80", "host:0", "host:65536", "host:80/x", "http://h:1/path", "http://h?x=1", "http://u:p@h:1", "-h:1", "a b:1", "x".repeat(300) + ":1"]) {
      expect({ bad, ok: isMemberAddress(bad) }).toEqual({ bad, ok: false });
    }
  });

  test("an address has at most MEMBER_ADDRESS_CHARS_MAX characters and an id is 1..MEMBER_ID_MAX", () => {
    const hostOf = (chars: number) => `${"h".repeat(chars - ":9000".length)}:9000`;
    expect(hostOf(MEMBER_ADDRESS_CHARS_MAX)).toHaveLength(MEMBER_ADDRESS_CHARS_MAX);
    expect(isMemberAddress(hostOf(MEMBER_ADDRESS_CHARS_MAX))).toBe(true);
    expect(isMemberAddress(hostOf(MEMBER_ADDRESS_CHARS_MAX + 1))).toBe(false);
    expect([1, MEMBER_ID_MAX].map(isMemberId)).toEqual([true, true]);
    expect([0, MEMBER_ID_MAX + 1, 1.5, -1, "1"].map(isMemberId)).toEqual([false, false, false, false, false]);
  });

  test("a learner added with addresses, promoted, then removed: the book follows, the id stays removed", () => {
    let membership = foundingMembership(new Map([[1, at(1)], [2, at(2)], [3, at(3)]]));
    membership = membershipAfter(membership, { type: "addLearner", nodeId: 4, context: encodeAddressContext(at(4)) });
    expect(membership.confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(membership.addresses.get(4)).toEqual(at(4));
    membership = membershipAfter(membership, { type: "addVoter", nodeId: 4 });
    expect(membership.confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    membership = membershipAfter(membership, { type: "removeNode", nodeId: 2 });
    expect(membership.confState.voters).toEqual([1, 3, 4]);
    expect(membership.addresses.has(2)).toBe(false);
    expect([...membership.removed]).toEqual([2]);
    expect(membershipFromWire(membershipToWire(membership))).toEqual(membership);
    expect(membershipFromWire(membershipToWire(emptyMembership()))).toEqual(emptyMembership());
  });

  test("malformed wire forms are WireFormatErrors", () => {
    const good = membershipToWire(foundingMembership(new Map([[1, at(1)]])));
    const bad: unknown[] = [
      null, [], [[1], [], [], []].slice(0, 3), [[0], [], [], []], [[1], [1], [[1, "127.0.0.1:1", "127.0.0.1:2"]], []],
      [[1], [], [[1, "no port", "127.0.0.1:2"]], []], [[1], [], [[1, "127.0.0.1:1", "127.0.0.1:2"], [1, "127.0.0.1:1", "127.0.0.1:2"]], []],
      [[1], [], [[2 ** 40, "127.0.0.1:1", "127.0.0.1:2"]], []], [["1"], [], [], []], [good[0], good[1], "x", good[3]],
    ];
    for (const raw of bad) expect(() => membershipFromWire(raw)).toThrow(WireFormatError);
  });
});
