import { describe, expect, test } from 'bun:test';
import {
  CompactedError, decodeConfChange, encodeConfChange, MemoryRaftStorage, ProposalDroppedError, RaftAssertionError, RawNode, seededRandom,
  UnavailableError,
} from '../../src/raft/index.ts';
import { Network } from './network.ts';

const random = seededRandom(7);
const entry = (index: number, term: number) => ({ index, term, type: 'normal' as const, data: new Uint8Array([index]) });

describe('config validation', () => {
  const storage = () => MemoryRaftStorage.bootstrap([1]);
  test.each([
    [{ id: 0 }, /id must be an integer/],
    [{ electionTicks: 1 }, /electionTicks/],
    [{ heartbeatTicks: 10, electionTicks: 10 }, /heartbeatTicks/],
    [{ maxInflightMessages: 0 }, /maxInflightMessages/],
    [{ maxEntriesPerMessage: 1.5 }, /maxEntriesPerMessage/],
    [{ maxBytesPerMessage: -1 }, /maxBytesPerMessage/],
    [{ maxPendingReads: 0 }, /maxPendingReads/],
  ])('%p is rejected with a message naming the field', (override, pattern) => {
    expect(() => new RawNode({ id: 1, random, ...override }, storage())).toThrow(pattern);
  });

  test('random must be a function', () => {
    expect(() => new RawNode({ id: 1, random: 3 as unknown as () => number }, storage())).toThrow(/random/);
  });
});

describe('MemoryRaftStorage', () => {
  test('answers terms and entries, and reports compaction with a typed error', () => {
    const storage = MemoryRaftStorage.bootstrap([1]);
    storage.append([entry(2, 1), entry(3, 2), entry(4, 2)]);
    expect(storage.term(1)).toBe(1);
    expect(storage.entries(2, 5, 1_000).map((e) => e.index)).toEqual([2, 3, 4]);
    expect(storage.entries(2, 5, 1).map((e) => e.index)).toEqual([2]);
    storage.createSnapshot(3, { voters: [1], learners: [] }, new Uint8Array([9]));
    storage.compact(3);
    expect(storage.firstIndex()).toBe(4);
    expect(storage.term(3)).toBe(2);
    expect(() => storage.term(2)).toThrow(CompactedError);
    expect(() => storage.entries(3, 5, 1_000)).toThrow(CompactedError);
    expect(() => storage.term(9)).toThrow(UnavailableError);
  });

  test('append truncates a conflicting suffix and refuses gaps', () => {
    const storage = MemoryRaftStorage.bootstrap([1]);
    storage.append([entry(2, 1), entry(3, 1), entry(4, 1)]);
    storage.append([entry(3, 2)]);
    expect(storage.lastIndex()).toBe(3);
    expect(storage.term(3)).toBe(2);
    expect(() => storage.append([entry(6, 2)])).toThrow(RaftAssertionError);
  });
});

describe('RawNode contract', () => {
  test('ready() twice without advance() is an assertion failure', () => {
    const node = new RawNode({ id: 1, random }, MemoryRaftStorage.bootstrap([1]));
    node.campaign();
    node.ready();
    expect(() => node.ready()).toThrow(RaftAssertionError);
  });

  test('a single voter elects itself and commits alone', () => {
    const storage = MemoryRaftStorage.bootstrap([1]);
    const node = new RawNode({ id: 1, random }, storage);
    node.campaign();
    let ready = node.ready();
    expect(ready.softState).toEqual({ lead: 1, role: 'leader' });
    storage.append(ready.entries);
    storage.setHardState(ready.hardState!);
    node.advance(ready);
    node.propose(new Uint8Array([42]));
    ready = node.ready();
    expect(ready.entries.map((e) => e.data[0])).toEqual([42]);
    // Its own copy counts only once durable: committed in the Ready after the one that persists it.
    expect(ready.committedEntries.map((e) => e.data[0])).not.toContain(42);
    storage.append(ready.entries);
    node.advance(ready);
    ready = node.ready();
    expect(ready.entries).toEqual([]);
    expect(ready.committedEntries.at(-1)!.data[0]).toBe(42);
  });

  test('a leader counts its own log toward a commit only once it is persisted', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const leader = net.get(1).node;
    leader.propose(new Uint8Array([7]));
    // One follower's ack alone (2 of 3 with the leader's copy still unpersisted) must not commit.
    const ready = leader.ready();
    const index = ready.entries.at(-1)!.index;
    for (const message of ready.messages.filter((m) => m.type === 'app' && m.to === 2)) net.get(2).node.step(message);
    const followerReady = net.get(2).node.ready();
    net.get(2).storage.append(followerReady.entries);
    if (followerReady.hardState) net.get(2).storage.setHardState(followerReady.hardState);
    net.get(2).node.advance(followerReady);
    for (const message of followerReady.messages.filter((m) => m.to === 1)) leader.step(message);
    expect(leader.status().commit).toBeLessThan(index);
    // Once the leader persists its own copy, the two durable copies commit it, and the new commit index goes out.
    net.get(1).storage.append(ready.entries);
    leader.advance(ready);
    expect(leader.status().commit).toBe(index);
    expect(leader.ready().messages.some((m) => m.type === 'app' && m.commit === index)).toBe(true);
  });

  test('a leader drops proposals beyond maxUncommittedBytes until entries commit', () => {
    const net = new Network([1, 2], { maxUncommittedBytes: 10 });
    net.campaign(1);
    net.drop('appResp');
    const leader = net.get(1).node;
    leader.propose(new Uint8Array(8));
    expect(() => leader.propose(new Uint8Array(8))).toThrow(ProposalDroppedError);
    net.recover();
    net.tick(2);
    expect(() => leader.propose(new Uint8Array(8))).not.toThrow();
  });

  test('conf change entries round-trip', () => {
    for (const type of ['addLearner', 'addVoter', 'removeNode'] as const) {
      expect(decodeConfChange(encodeConfChange({ type, nodeId: 70_000 }))).toEqual({ type, nodeId: 70_000 });
    }
  });
});
