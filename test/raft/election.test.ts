import { describe, expect, test } from 'bun:test';
import { Network } from './network.ts';

describe('leader election (§5.2)', () => {
  test('initial election: a cluster of 3 elects exactly one leader by timeouts alone', () => {
    const net = new Network([1, 2, 3]);
    net.tick(40);
    expect(net.leaders()).toHaveLength(1);
    const leader = net.leaders()[0]!;
    for (const n of net.nodes.values()) {
      expect(n.node.status().lead).toBe(leader);
      expect(n.node.status().term).toBe(net.get(leader).node.status().term);
    }
  });

  test('a candidate that wins a majority becomes leader in the next term', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    expect(net.get(1).node.status()).toMatchObject({ role: 'leader', term: 2 });
    expect(net.get(2).node.status()).toMatchObject({ role: 'follower', term: 2, lead: 1 });
  });

  test('re-election after leader loss: the remaining majority elects a new leader with a higher term', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(1);
    net.tick(40, [2, 3]);
    const leaders = net.leaders().filter((id) => id !== 1);
    expect(leaders).toHaveLength(1);
    expect(net.get(leaders[0]!).node.status().term).toBeGreaterThan(2);
  });

  test('no leader without quorum: 2 of 5 connected nodes never elect a leader', () => {
    const net = new Network([1, 2, 3, 4, 5]);
    for (const id of [3, 4, 5]) net.isolate(id);
    net.tick(200, [1, 2]);
    expect(net.leaders()).toEqual([]);
  });

  test('dueling candidates: two candidates in one term, at most one wins', () => {
    const net = new Network([1, 2, 3], { preVote: false, checkQuorum: false });
    net.get(1).node.campaign();
    net.get(3).node.campaign();
    net.stabilize();
    const leaders = net.leaders();
    expect(leaders).toHaveLength(1);
    const term = net.get(leaders[0]!).node.status().term;
    expect(term).toBe(2);
    net.tick(60);
    const byTerm = new Map<number, number>();
    for (const id of net.leaders()) byTerm.set(net.get(id).node.status().term, (byTerm.get(net.get(id).node.status().term) ?? 0) + 1);
    for (const count of byTerm.values()) expect(count).toBe(1);
  });

  test('a voter refuses a candidate whose log is less up to date (§5.4.1)', () => {
    const net = new Network([1, 2, 3], { preVote: false, checkQuorum: false });
    net.campaign(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.propose(1, 'b');
    net.recover();
    net.get(3).node.campaign();
    net.stabilize();
    expect(net.get(3).node.status().role).not.toBe('leader');
    const rejections = net.delivered.filter((m) => m.type === 'voteResp' && m.to === 3);
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.every((m) => m.reject)).toBe(true);
  });

  test('a voter grants at most one vote per term', () => {
    const net = new Network([1, 2, 3], { preVote: false, checkQuorum: false });
    net.get(1).node.campaign();
    net.get(3).node.campaign();
    net.stabilize();
    const granted = net.delivered.filter((m) => m.type === 'voteResp' && m.from === 2 && !m.reject && m.term === 2);
    expect(granted).toHaveLength(1);
  });
});

describe('pre-vote and check-quorum (§9.6)', () => {
  test('pre-vote stops a rejoining partitioned node from deposing the leader', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    net.tick(100, [3]);
    expect(net.get(3).node.status().term).toBe(2);
    net.recover();
    net.tick(5);
    expect(net.leaders()).toEqual([1]);
    expect(net.get(1).node.status().term).toBe(2);
  });

  test('without pre-vote the same rejoining node does disrupt the term', () => {
    const net = new Network([1, 2, 3], { preVote: false, checkQuorum: false });
    net.campaign(1);
    net.isolate(3);
    net.tick(100, [3]);
    net.recover();
    net.tick(30);
    expect(net.get(1).node.status().term).toBeGreaterThan(2);
  });

  test('check-quorum: a leader that hears from no quorum for an election timeout steps down', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(1);
    net.tick(25, [1]);
    expect(net.get(1).node.status().role).toBe('follower');
  });

  test('check-quorum lease: a follower that hears from its leader ignores a disruptive vote', () => {
    const net = new Network([1, 2, 3], { preVote: false });
    net.campaign(1);
    net.cut(1, 3);
    net.tick(30, [3]);
    net.get(3).node.campaign();
    net.stabilize();
    expect(net.leaders()).toContain(1);
  });
});
