// The kit's waiting: until resolves with what its check found, retries a check that throws, and gives up naming what it
// waited for; passes turns assertions into a check; changes waits on events instead of a clock.
import { describe, expect, it } from 'vitest';
import { changes, passes, sleep, until } from '../wait.js';

describe('until', () => {
  it("resolves with the check's first truthy value, sync or async", async () => {
    let looks = 0;
    expect(await until(() => ++looks >= 3 && { looks })).toEqual({ looks: 3 });
    expect(await until(async () => 'found')).toBe('found');
  });

  it('gives up after timeoutMs, naming what it waited for', async () => {
    const t0 = Date.now();
    await expect(until(() => false, { what: 'the moon', timeoutMs: 100, intervalMs: 10 })).rejects.toThrow('timed out after 100 ms waiting for the moon');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    await expect(until(() => 0, { timeoutMs: 50 })).rejects.toThrow('timed out after 50 ms waiting for a condition');
    await expect(until(() => null, { what: () => `state ${1 + 1}`, timeoutMs: 50 })).rejects.toThrow('waiting for state 2');
  });

  it('looks again when the check throws, and gives the last error as the cause when it gives up', async () => {
    let looks = 0;
    expect(await until(() => {
      if (++looks < 3) throw new Error('not yet');
      return looks;
    })).toBe(3);
    const failed = await until(() => { throw new Error('still not'); }, { what: 'a check that throws', timeoutMs: 50 }).catch((e: Error) => e);
    expect(failed).toBeInstanceOf(Error);
    expect([(failed as Error).message, ((failed as Error).cause as Error).message]).toEqual(['timed out after 50 ms waiting for a check that throws', 'still not']);
  });
});

describe('passes', () => {
  it('is true once the assertions hold; the last failed assertion is the cause when until gives up', async () => {
    let n = 0;
    const count = (async () => {
      for (; n < 3; n++) await sleep(10);
    })();
    await until(passes(() => expect(n).toBe(3)), { timeoutMs: 2000 });
    await count;
    const failed = (await until(passes(() => expect(n).toBe(4)), { timeoutMs: 50 }).catch((e: Error) => e)) as Error;
    expect((failed.cause as Error).message).toMatch(/expected 3 to be 4/);
  });
});

describe('changes', () => {
  it('looks now and after each changed(), resolves with what it found, and gives up naming what it waited for', async () => {
    const seen: string[] = [];
    const events = changes();
    expect(await events.until(() => 'at once')).toBe('at once');
    const second = events.until(() => seen[1], 'a second event');
    seen.push('a');
    events.changed();
    seen.push('b');
    events.changed();
    expect(await second).toBe('b');
    await expect(events.until(() => seen[5], { what: () => `a sixth event (${seen.length} so far)`, timeoutMs: 50 })).rejects.toThrow('timed out after 50 ms waiting for a sixth event (2 so far)');
  });

  it('rejects at once with the error the check throws', async () => {
    const events = changes();
    let exited = false;
    const waiting = events.until(() => {
      if (exited) throw new Error('exited first');
      return false;
    }, { timeoutMs: 5000 });
    exited = true;
    events.changed();
    await expect(waiting).rejects.toThrow('exited first');
  });
});
