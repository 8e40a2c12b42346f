// Token timing: decoding exp without verifying, and the refresh instant.
import { describe, expect, it } from 'vitest';
import { refreshDelay, tokenTimes } from '../refresh-delay.js';
import { fakeJwt } from './support/test-relay.js';

describe('token timing', () => {
  it('decodes a base64url payload without padding, including - and _ characters', () => {
    // "?>?" style bytes produce '-' and '_' in base64url; the tenant string forces them.
    const token = fakeJwt({ exp: 2_000_000_000, tenant_id: '>>>???~~~', n: 'ÿÿ' });
    expect(token.split('.')[1]).toMatch(/[-_]/);
    expect(token.split('.')[1]).not.toMatch(/=/);
    expect(tokenTimes(token)).toEqual({ exp: 2_000_000_000_000, iat: NaN });
    expect(tokenTimes(fakeJwt({ iat: 1_900_000_000, exp: 2_000_000_000 }))).toEqual({ exp: 2_000_000_000_000, iat: 1_900_000_000_000 });
  });

  it('gives NaN times for what is not a JWT, has no exp, or not as a number; refreshDelay then undefined', () => {
    const none = { exp: NaN, iat: NaN };
    expect(tokenTimes('not a jwt')).toEqual(none);
    expect(tokenTimes('a.%%%.c')).toEqual(none);
    expect(tokenTimes(`x.${Buffer.from('42').toString('base64url')}.y`)).toEqual(none);
    expect(tokenTimes(`x.${Buffer.from('null').toString('base64url')}.y`)).toEqual(none);
    expect(tokenTimes(fakeJwt({ exp: '2000000000', iat: true }))).toEqual(none);
    expect(tokenTimes(fakeJwt({ sub: 'x' }))).toEqual(none);
    expect(refreshDelay(fakeJwt({ exp: '2000000000' }))).toBeUndefined();
    expect(refreshDelay(fakeJwt({ sub: 'x' }))).toBeUndefined();
    expect(refreshDelay('opaque-token')).toBeUndefined();
  });

  it('refreshes 60 s before exp for long-lived tokens, and at 90 % of the lifetime for short ones', () => {
    const now = 1_700_000_000_000;
    const s = now / 1000;
    expect(refreshDelay(fakeJwt({ iat: s, exp: s + 3600 }), now)).toBe(3540_000);
    expect(refreshDelay(fakeJwt({ iat: s, exp: s + 300 }), now)).toBe(270_000);
    // Issued two minutes ago for 5 minutes: 30 s lead from a 180 s remainder.
    expect(refreshDelay(fakeJwt({ iat: s - 120, exp: s + 180 }), now)).toBe(150_000);
    // Without iat the lifetime counts from now.
    expect(refreshDelay(fakeJwt({ exp: s + 100 }), now)).toBe(90_000);
  });

  it('never asks for a refresh sooner than 1 s nor later than setTimeout can wait', () => {
    const now = 1_700_000_000_000;
    expect(refreshDelay(fakeJwt({ exp: now / 1000 - 10 }), now)).toBe(1000);
    expect(refreshDelay(fakeJwt({ exp: now / 1000 + 0.5 }), now)).toBe(1000);
    expect(refreshDelay(fakeJwt({ exp: now / 1000 + 365 * 86400 }), now)).toBe(2 ** 31 - 1);
  });
});
