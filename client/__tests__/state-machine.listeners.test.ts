// createStateMachine(): one setter, {from, to} only on change.
import { describe, expect, it } from 'vitest';
import { createStateMachine, type StateChange } from '../state-machine.js';

describe('createStateMachine', () => {
  it('tells listeners {from, to} only when the state changes', () => {
    const m = createStateMachine<'a' | 'b' | 'c'>('a');
    const seen: Array<StateChange<'a' | 'b' | 'c'>> = [];
    m.on((c) => seen.push(c));
    m.set('a');
    m.set('b');
    m.set('b');
    m.set('c');
    m.set('c');
    expect(seen).toEqual([
      { from: 'a', to: 'b' },
      { from: 'b', to: 'c' },
    ]);
    expect(m.get()).toBe('c');
  });

  it('returns an unsubscribe from on(), safe to call while being told', () => {
    const m = createStateMachine<'x' | 'y'>('x');
    const calls: string[] = [];
    const offA = m.on(() => {
      calls.push('a');
      offA();
    });
    m.on(() => calls.push('b'));
    m.set('y');
    m.set('x');
    expect(calls).toEqual(['a', 'b', 'b']);
  });
});
