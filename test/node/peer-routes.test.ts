import { describe, expect, test } from "bun:test";
import { emptyMembership, foundingMembership, type Membership } from "../../src/node/members.ts";
import { LEARNED_ROUTES_MAX, PeerRoutes } from "../../src/node/peer-routes.ts";

const book = (ids: number[]): Membership =>
  foundingMembership(new Map(ids.map((id) => [id, { clientAddress: `127.0.0.1:${8000 + id}`, raftAddress: `127.0.0.1:${9000 + id}` }])));

describe("peer routes", () => {
  test("the book's peers are the routes, self excluded", () => {
    const routes = new PeerRoutes(1);
    expect([...routes.addresses(book([1, 2, 3]))]).toEqual([[2, "127.0.0.1:9002"], [3, "127.0.0.1:9003"]]);
  });

  test("a sender the book does not name is learned once; a bad address or a named sender is not", () => {
    const routes = new PeerRoutes(4);
    const membership = book([1, 2]);
    expect(routes.learn(membership, 3, "127.0.0.1:9003")).toBe(true);
    expect(routes.learn(membership, 3, "127.0.0.1:9003")).toBe(false);
    expect(routes.learn(membership, 2, "10.0.0.2:9999")).toBe(false);
    expect(routes.learn(membership, 5, "not an address")).toBe(false);
    expect(routes.addresses(membership).get(3)).toBe("127.0.0.1:9003");
    expect(routes.addresses(membership).get(2)).toBe("127.0.0.1:9002");
    expect(routes.addresses(membership).has(5)).toBe(false);
    // A move is a change.
    expect(routes.learn(membership, 3, "127.0.0.1:9333")).toBe(true);
    expect(routes.addresses(membership).get(3)).toBe("127.0.0.1:9333");
  });

  test(`at most ${LEARNED_ROUTES_MAX} learned routes; the oldest goes first`, () => {
    const routes = new PeerRoutes(1);
    const membership = emptyMembership();
    for (let id = 2; id < 2 + LEARNED_ROUTES_MAX + 3; id++) routes.learn(membership, id, `127.0.0.1:${10_000 + id}`);
    const addresses = routes.addresses(membership);
    expect(addresses.size).toBe(LEARNED_ROUTES_MAX);
    for (const id of [2, 3, 4]) expect(addresses.has(id)).toBe(false);
    expect(addresses.get(2 + LEARNED_ROUTES_MAX + 2)).toBe(`127.0.0.1:${10_004 + LEARNED_ROUTES_MAX}`);
  });

  test("once the book names or removes a learned id, the book wins", () => {
    const routes = new PeerRoutes(1);
    routes.learn(book([1]), 2, "10.0.0.2:1");
    routes.learn(book([1]), 3, "10.0.0.3:1");
    const next = book([1, 2]);
    next.removed.add(3);
    routes.adopt(next);
    const addresses = routes.addresses(next);
    expect(addresses.get(2)).toBe("127.0.0.1:9002");
    expect(addresses.has(3)).toBe(false);
  });
});
