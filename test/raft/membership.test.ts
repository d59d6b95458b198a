import { describe, expect, test } from 'bun:test';
import { MemoryRaftStorage, ProposalDroppedError } from '../../src/raft/index.ts';
import { bytes, Network } from './network.ts';

describe('membership changes (§4)', () => {
  test('learners never campaign, yet receive the log; addVoter promotes a caught-up learner', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a');
    net.add(4, new MemoryRaftStorage());
    net.get(1).node.proposeConfChange({ type: 'addLearner', nodeId: 4 });
    net.tick(3);
    expect(net.get(4).applied).toEqual(['a']);
    expect(net.get(4).node.confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    net.isolate(4);
    net.tick(100, [4]);
    expect(net.get(4).node.status()).toMatchObject({ role: 'follower', term: 2 });
    net.recover();
    net.get(1).node.proposeConfChange({ type: 'addVoter', nodeId: 4 });
    net.tick(3);
    expect(net.get(1).node.confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(net.get(4).node.confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] });
  });

  test('only one config change may be pending at a time', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const leader = net.get(1).node;
    leader.proposeConfChange({ type: 'addLearner', nodeId: 4 });
    expect(() => leader.proposeConfChange({ type: 'addLearner', nodeId: 5 })).toThrow(ProposalDroppedError);
    net.stabilize();
    expect(() => leader.proposeConfChange({ type: 'addLearner', nodeId: 5 })).not.toThrow();
  });

  test('a new leader accepts no config change until its first entry is applied', () => {
    const net = new Network([1, 2, 3]);
    net.drop('appResp');
    net.campaign(1);
    expect(() => net.get(1).node.proposeConfChange({ type: 'removeNode', nodeId: 3 })).toThrow(ProposalDroppedError);
  });

  test('removing a node lets a pending entry commit', () => {
    const net = new Network([1, 2]);
    net.campaign(1);
    const leader = net.get(1).node;
    leader.proposeConfChange({ type: 'removeNode', nodeId: 2 });
    const confIndex = leader.status().lastIndex;
    leader.propose(bytes('x'));
    // Node 2 acknowledges the removal but never receives the data entry.
    net.mutate = (m) => (m.type === 'app' ? { ...m, entries: m.entries.filter((e) => e.index <= confIndex) } : m);
    net.stabilize();
    expect(leader.confState().voters).toEqual([1]);
    expect(net.get(1).applied).toEqual(['x']);
    expect(net.get(2).applied).toEqual([]);
  });

  test('a removed leader steps down and the rest elect a new one', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.get(1).node.proposeConfChange({ type: 'removeNode', nodeId: 1 });
    net.stabilize();
    expect(net.get(1).node.status().role).toBe('follower');
    net.tick(40, [2, 3]);
    expect(net.leaders().filter((id) => id !== 1)).toHaveLength(1);
  });
});

describe('leader transfer (§3.10)', () => {
  test('the leader first catches the target up, then sends TimeoutNow and the target takes over', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.propose(1, 'b');
    net.recover();
    const lagging = net.get(3).node.status().lastIndex;
    expect(lagging).toBeLessThan(net.get(1).node.status().lastIndex);
    const targetLastIndexAtTimeoutNow: number[] = [];
    net.mutate = (m) => {
      if (m.type === 'timeoutNow') targetLastIndexAtTimeoutNow.push(net.get(3).node.status().lastIndex);
      return m;
    };
    net.get(1).node.transferLeader(3);
    net.stabilize();
    expect(targetLastIndexAtTimeoutNow).toEqual([net.get(1).node.status().lastIndex - 1]);
    expect(net.leaders()).toEqual([3]);
    expect(net.get(3).applied).toEqual(['a', 'b']);
  });

  test('a transfer that does not finish within an election timeout is aborted', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    const leader = net.get(1).node;
    leader.transferLeader(3);
    expect(leader.status().leadTransferee).toBe(3);
    expect(() => leader.propose(bytes('blocked'))).toThrow(ProposalDroppedError);
    net.tick(10, [1, 2]);
    expect(leader.status()).toMatchObject({ leadTransferee: 0, role: 'leader' });
    expect(() => leader.propose(bytes('ok'))).not.toThrow();
  });
});

describe('linearizable reads (§6.4)', () => {
  test('ReadIndex is held by a new leader until it commits an entry of its term', () => {
    const net = new Network([1, 2, 3]);
    net.drop('appResp');
    net.campaign(1);
    const leader = net.get(1);
    leader.node.readIndex(bytes('r1'));
    net.tick(2);
    expect(leader.readStates).toEqual([]);
    net.recover();
    net.tick(2);
    expect(leader.readStates).toHaveLength(1);
    expect(leader.readStates[0]!.index).toBe(leader.node.status().commit);
    expect(new TextDecoder().decode(leader.readStates[0]!.context)).toBe('r1');
  });

  test('a read is confirmed only after a quorum acknowledges leadership', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(1);
    const leader = net.get(1);
    leader.node.readIndex(bytes('r2'));
    net.stabilize();
    expect(leader.readStates).toEqual([]);
    net.recover();
    net.tick(1);
    expect(leader.readStates.map((s) => new TextDecoder().decode(s.context))).toEqual(['r2']);
  });

  test('followers refuse reads and proposals with a leader hint', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    try {
      net.get(2).node.propose(bytes('x'));
      throw new Error('expected a drop');
    } catch (error) {
      expect(error).toBeInstanceOf(ProposalDroppedError);
      expect((error as ProposalDroppedError).leader).toBe(1);
    }
    expect(() => net.get(2).node.readIndex(bytes('r'))).toThrow(ProposalDroppedError);
  });
});
