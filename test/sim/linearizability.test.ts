import { describe, expect, test } from 'bun:test';
import { checkLinearizable, checkRegister, type RegisterOperation } from './linearizability.ts';

const w = (value: string, callTime: number, returnTime: number): RegisterOperation => ({ key: 'k', kind: 'write', value, callTime, returnTime });
const r = (value: string | null, callTime: number, returnTime: number): RegisterOperation => ({ key: 'k', kind: 'read', value, callTime, returnTime });

describe('linearizability checker (register)', () => {
  test('a sequential history is linearizable', () => {
    expect(checkRegister([w('a', 0, 1), r('a', 2, 3), w('b', 4, 5), r('b', 6, 7)])).toBe(true);
  });

  test('reading a value before any write returns null', () => {
    expect(checkRegister([r(null, 0, 1), w('a', 2, 3)])).toBe(true);
    expect(checkRegister([w('a', 0, 1), r(null, 2, 3)])).toBe(false);
  });

  test('concurrent operations may be ordered either way', () => {
    expect(checkRegister([w('a', 0, 10), r('a', 1, 2), r(null, 3, 4)])).toBe(false);
    expect(checkRegister([w('a', 0, 10), r(null, 1, 2), r('a', 3, 4)])).toBe(true);
    expect(checkRegister([w('a', 0, 5), w('b', 1, 6), r('a', 7, 8)])).toBe(true);
  });

  test('rejects a stale read after a completed write (non-linearizable)', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, 3), r('a', 4, 5)])).toBe(false);
  });

  test('rejects values flipping back (a then b then a) with no write of a in between', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, 10), r('b', 3, 4), r('a', 5, 6)])).toBe(false);
  });

  test('an unknown-outcome write may take effect late, or never', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, Infinity), r('a', 3, 4), r('b', 10, 11)])).toBe(true);
    expect(checkRegister([w('a', 0, 1), w('b', 2, Infinity), r('a', 3, 4), r('a', 10, 11)])).toBe(true);
    // Once observed, it cannot be un-done.
    expect(checkRegister([w('a', 0, 1), w('b', 2, Infinity), r('b', 3, 4), r('a', 10, 11)])).toBe(false);
  });

  test('an unknown write cannot take effect before it was called', () => {
    expect(checkRegister([r('b', 0, 1), w('b', 2, Infinity)])).toBe(false);
  });

  test('multi-key histories are checked per key and report the failing key', () => {
    const history: RegisterOperation[] = [
      { key: 'x', kind: 'write', value: '1', callTime: 0, returnTime: 1 },
      { key: 'y', kind: 'write', value: '2', callTime: 0, returnTime: 1 },
      { key: 'y', kind: 'read', value: null, callTime: 2, returnTime: 3 },
      { key: 'x', kind: 'read', value: '1', callTime: 2, returnTime: 3 },
    ];
    const result = checkLinearizable(history);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.key).toBe('y');
  });

  test('a long concurrent history is checked quickly', () => {
    const ops: RegisterOperation[] = [];
    for (let i = 0; i < 300; i++) {
      ops.push(w(`v${i}`, i * 10, i * 10 + 15));
      ops.push(r(`v${i}`, i * 10 + 16, i * 10 + 18));
    }
    expect(checkRegister(ops)).toBe(true);
  });
});
