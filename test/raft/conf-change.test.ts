import { describe, expect, test } from 'bun:test';
import {
  CONF_CHANGE_CONTEXT_BYTES_MAX, confStateAfter, decodeConfChange, encodeConfChange, MemoryRaftStorage, RaftAssertionError,
} from '../../src/raft/index.ts';
import { Network } from './network.ts';

describe('conf change encoding', () => {
  test('a change without context keeps the original 5-byte form; a context round-trips', () => {
    const plain = encodeConfChange({ type: 'addVoter', nodeId: 7 });
    expect([...plain]).toEqual([1, 0, 0, 0, 7]);
    expect(decodeConfChange(plain)).toEqual({ type: 'addVoter', nodeId: 7 });
    const context = new TextEncoder().encode('127.0.0.1:9004');
    const withContext = encodeConfChange({ type: 'addLearner', nodeId: 4, context });
    expect(withContext.length).toBe(5 + context.length);
    expect(decodeConfChange(withContext)).toEqual({ type: 'addLearner', nodeId: 4, context });
  });

  test('an oversized context is a programmer error', () => {
    const context = new Uint8Array(CONF_CHANGE_CONTEXT_BYTES_MAX + 1);
    expect(() => encodeConfChange({ type: 'addLearner', nodeId: 4, context })).toThrow(RaftAssertionError);
  });
});

describe('confStateAfter', () => {
  const base = { voters: [1, 2, 3], learners: [4] };
  test('adds learners, promotes, removes, and never demotes a voter', () => {
    expect(confStateAfter(base, { type: 'addLearner', nodeId: 5 })).toEqual({ voters: [1, 2, 3], learners: [4, 5] });
    expect(confStateAfter(base, { type: 'addVoter', nodeId: 4 })).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(confStateAfter(base, { type: 'removeNode', nodeId: 2 })).toEqual({ voters: [1, 3], learners: [4] });
    expect(confStateAfter(base, { type: 'removeNode', nodeId: 4 })).toEqual({ voters: [1, 2, 3], learners: [] });
    expect(confStateAfter(base, { type: 'addLearner', nodeId: 1 })).toEqual(base);
  });

  test('agrees with the membership the core applies, context included', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.add(4, new MemoryRaftStorage());
    let expected = net.get(1).node.confState();
    const changes = [
      { type: 'addLearner', nodeId: 4, context: new Uint8Array([1, 2, 3]) },
      { type: 'addVoter', nodeId: 4 },
      { type: 'removeNode', nodeId: 2 },
    ] as const;
    for (const change of changes) {
      net.get(1).node.proposeConfChange(change);
      net.stabilize();
      expected = confStateAfter(expected, change);
      expect(net.get(1).node.confState()).toEqual(expected);
      expect(net.get(3).node.confState()).toEqual(expected);
    }
  });
});
