/**
 * Lease-based reads (§6.4.1): a leader whose lease holds answers ReadIndex
 * at once; a lease comes only from a heartbeat round a quorum acknowledged,
 * ends electionTicks - LEASE_MARGIN_TICKS ticks after that round was sent,
 * never survives a leadership transfer, and a restarted node refuses votes
 * long enough that no lease it may have backed can be overtaken.
 */
import { describe, expect, test } from 'bun:test';
import { LEASE_MARGIN_TICKS } from '../../src/raft/lease.ts';
import { MemoryRaftStorage, RawNode, seededRandom } from '../../src/raft/index.ts';
import { bytes, Network } from './network.ts';

const ELECTION_TICKS = 10;
const LEASE_TICKS = ELECTION_TICKS - LEASE_MARGIN_TICKS;

/** A 3-node network with lease reads and an elected leader (this term's no-op committed); returns both. */
function leaseCluster(): { net: Network; leader: number; follower: number } {
  const net = new Network([1, 2, 3], { electionTicks: ELECTION_TICKS, heartbeatTicks: 1, leaseReads: true });
  for (let i = 0; i < 5 * ELECTION_TICKS && net.leaders().length === 0; i++) net.tick(1);
  expect(net.leaders().length).toBe(1);
  const leader = net.leaders()[0]!;
  return { net, leader, follower: [1, 2, 3].find((id) => id !== leader)! };
}

/** Ask node `id` for a read; true when it was answered without any message leaving the node. */
function answeredLocally(net: Network, id: number, context: string): boolean {
  const before = net.delivered.length;
  const states = net.get(id).readStates.length;
  net.get(id).node.readIndex(bytes(context));
  net.stabilize();
  const answered = net.get(id).readStates.length > states;
  return answered && net.delivered.slice(before).every((m) => m.type !== 'heartbeat');
}

describe('lease reads', () => {
  test('a fresh leader has no lease: its first read takes a heartbeat round', () => {
    const { net, leader: L } = leaseCluster();
    expect(answeredLocally(net, L, 'r1')).toBe(false);
    expect(net.get(L).readStates.map((s) => new TextDecoder().decode(s.context))).toEqual(['r1']);
  });

  test('after a quorum acknowledged a heartbeat round, reads are answered at once, at the commit index', () => {
    const { net, leader: L } = leaseCluster();
    net.tick(1, [L]);
    net.propose(L, 'x');
    expect(answeredLocally(net, L, 'r1')).toBe(true);
    const state = net.get(L).readStates.at(-1)!;
    expect(state.index).toBe(net.get(L).node.status().commit);
  });

  test('the lease ends LEASE_TICKS after the last acknowledged round: then reads need a quorum again', () => {
    const { net, leader: L } = leaseCluster();
    net.tick(1, [L]);
    net.isolate(L);
    // Heartbeats go out but none is acknowledged; the lease from the last acknowledged round runs out.
    net.tick(LEASE_TICKS - 2, [L]);
    expect(answeredLocally(net, L, 'in-lease')).toBe(true);
    net.tick(2, [L]);
    expect(answeredLocally(net, L, 'expired')).toBe(false);
    expect(net.get(L).readStates.map((s) => new TextDecoder().decode(s.context))).toEqual(['in-lease']);
  });

  test('the lease expires before the isolated leader\'s followers could elect another leader', () => {
    const { net, leader: L } = leaseCluster();
    net.tick(1, [L]);
    net.isolate(L);
    // Followers refuse votes for ELECTION_TICKS after hearing from the leader; the lease is shorter than that.
    let leaseTicks = 0;
    while (answeredLocally(net, L, `r${leaseTicks}`)) {
      net.tick(1, [L]);
      leaseTicks++;
    }
    expect(leaseTicks).toBeLessThan(ELECTION_TICKS);
    expect(leaseTicks).toBeGreaterThan(0);
  });

  test('a leadership transfer ends the lease for the rest of that leadership', () => {
    const { net, leader: L, follower: F } = leaseCluster();
    net.tick(1, [L]);
    expect(answeredLocally(net, L, 'before')).toBe(true);
    net.drop('timeoutNow');
    net.get(L).node.transferLeader(F);
    net.stabilize();
    expect(answeredLocally(net, L, 'during')).toBe(false);
    net.recover();
    net.tick(ELECTION_TICKS + 2, [L]); // the transfer is abandoned; the lease does not come back
    expect(net.leaders()).toEqual([L]);
    expect(answeredLocally(net, L, 'after')).toBe(false);
  });

  test('a freshly started node refuses votes for an election timeout, then votes as usual', () => {
    const storage = MemoryRaftStorage.bootstrap([1, 2, 3]);
    const node = new RawNode({ id: 2, electionTicks: ELECTION_TICKS, leaseReads: true, random: seededRandom(3) }, storage);
    const voteRequest = { type: 'preVote' as const, from: 3, to: 2, term: 2, logTerm: 1, index: 1, entries: [], commit: 0, reject: false, rejectHint: 0 };
    const answers = () => {
      const ready = node.ready();
      node.advance(ready);
      return ready.messages.filter((m) => m.type === 'preVoteResp').map((m) => m.reject);
    };
    node.step(voteRequest);
    expect(answers()).toEqual([]);
    for (let i = 0; i < ELECTION_TICKS - 1; i++) node.tick();
    node.step(voteRequest);
    expect(answers()).toEqual([]);
    node.tick();
    node.step(voteRequest);
    expect(answers()).toEqual([false]);
  });

  test('config: lease reads need check-quorum and an election timeout of at least 3 ticks', () => {
    const storage = MemoryRaftStorage.bootstrap([1]);
    expect(() => new RawNode({ id: 1, leaseReads: true, checkQuorum: false, random: seededRandom(1) }, storage)).toThrow(/checkQuorum/);
    expect(() => new RawNode({ id: 1, leaseReads: true, electionTicks: 2, heartbeatTicks: 1, random: seededRandom(1) }, storage)).toThrow(/electionTicks/);
  });
});
