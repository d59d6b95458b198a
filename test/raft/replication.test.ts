import { describe, expect, test } from 'bun:test';
import { MemoryRaftStorage, type Entry } from '../../src/raft/index.ts';
import { Network } from './network.ts';

/** Entries with the given terms starting at index 2 (index 1 is the bootstrap snapshot). */
function entriesWithTerms(terms: number[]): Entry[] {
  return terms.map((term, i) => ({ index: i + 2, term, type: 'normal', data: new Uint8Array(0) }));
}

function storageWithLog(terms: number[], term: number): MemoryRaftStorage {
  const storage = MemoryRaftStorage.bootstrap([1, 2, 3]);
  storage.append(entriesWithTerms(terms));
  storage.setHardState({ term, vote: 0, commit: 1 });
  return storage;
}

// The logs of the paper's figure 7: leader for term 8 and followers (a)-(f).
const LEADER_LOG = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FIGURE_7_FOLLOWERS: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};

describe('log replication (§5.3)', () => {
  for (const [name, followerLog] of Object.entries(FIGURE_7_FOLLOWERS)) {
    test(`follower log repair (figure 7 ${name}): the leader forces the follower's log to match its own`, () => {
      const net = new Network([1, 2, 3], { preVote: false });
      net.add(1, storageWithLog(LEADER_LOG, 7));
      net.add(2, storageWithLog(followerLog, 7));
      net.add(3, storageWithLog(LEADER_LOG, 7));
      net.campaign(1);
      expect(net.leaders()).toEqual([1]);
      net.propose(1, 'x');
      expect(net.logOf(2)).toEqual(net.logOf(1));
      expect(net.get(2).node.status().commit).toBe(net.get(1).node.status().lastIndex);
      // Fast backtracking: a rejection hint skips a whole term, not one index per round trip.
      const rejections = net.delivered.filter((m) => m.type === 'appResp' && m.from === 2 && m.reject);
      expect(rejections.length).toBeLessThanOrEqual(3);
    });
  }

  test('figure 8: a leader never commits an entry of an earlier term by counting replicas', () => {
    for (const knob of [false, true]) {
      const net = new Network([1, 2, 3], { preVote: false, testingKnobs: { commitPreviousTermEntries: knob } });
      net.add(1, storageWithLog([2], 3));
      net.add(2, storageWithLog([], 3));
      net.add(3, storageWithLog([], 3));
      // Followers only ever receive the old-term entry at index 2, never the new no-op at 3.
      net.mutate = (m) => (m.type === 'app' ? { ...m, entries: m.entries.filter((e) => e.index <= 2), commit: Math.min(m.commit, 2) } : m);
      net.campaign(1);
      expect(net.leaders()).toEqual([1]);
      net.tick(3);
      expect(net.get(2).node.status().lastIndex).toBe(2);
      expect(net.get(1).node.status().commit).toBe(knob ? 2 : 1);
      net.recover();
      net.tick(2);
      expect(net.get(1).node.status().commit).toBe(3);
    }
  });

  test('proposals are batched and pipelined within the in-flight window', () => {
    const net = new Network([1, 2, 3], { maxInflightMessages: 2, maxEntriesPerMessage: 2 });
    net.campaign(1);
    const leader = net.get(1).node;
    leader.proposeBatch(['a', 'b', 'c', 'd', 'e'].map((s) => new TextEncoder().encode(s)));
    const progress = leader.status().progress.get(2)!;
    expect(progress.state).toBe('replicate');
    // Two messages of two entries each are in flight; the fifth entry waits for an ack.
    expect(progress.next - 1 - progress.match).toBe(4);
    net.stabilize();
    const appsTo2 = net.delivered.filter((m) => m.type === 'app' && m.to === 2);
    for (const m of appsTo2) expect(m.entries.length).toBeLessThanOrEqual(2);
    for (const id of [1, 2, 3]) expect(net.get(id).applied).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  test('snapshot install for a slow follower behind the compacted log', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
    net.compact(1);
    net.recover();
    net.tick(3);
    expect(net.delivered.some((m) => m.type === 'snap' && m.to === 3)).toBe(true);
    expect(net.get(3).applied).toEqual(net.get(1).applied);
    net.propose(1, 'after');
    expect(net.get(3).applied.at(-1)).toBe('after');
    expect(net.get(3).node.status().applied).toBe(net.get(1).node.status().applied);
  });

  test('persistence across restart of every node: terms, votes, logs and applied state survive', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.compact(2);
    const before = [1, 2, 3].map((id) => ({ status: net.get(id).node.status(), log: net.logOf(id), applied: net.get(id).applied }));
    for (const id of [1, 2, 3]) net.restart(id);
    net.stabilize();
    [1, 2, 3].forEach((id, i) => {
      const status = net.get(id).node.status();
      expect(status.term).toBe(before[i]!.status.term);
      expect(status.vote).toBe(before[i]!.status.vote);
      expect(net.logOf(id)).toEqual(before[i]!.log);
      expect(net.get(id).applied).toEqual(before[i]!.applied);
    });
    net.tick(40);
    expect(net.leaders()).toHaveLength(1);
    net.propose(net.leaders()[0]!, 'after-restart');
    for (const id of [1, 2, 3]) expect(net.get(id).applied).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'after-restart']);
  });
});
