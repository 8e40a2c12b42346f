// Token timing: decoding exp without verifying, and the refresh instant.
import { describe, expect, it } from 'vitest';
import { jwtClaims, refreshDelay, tokenExpiry } from '../refresh-delay.js';
import { fakeJwt } from './support/test-relay.js';

describe('token timing', () => {
  it('decodes a base64url payload without padding, including - and _ characters', () => {
    // "?>?" style bytes produce '-' and '_' in base64url; the tenant string forces them.
    const token = fakeJwt({ exp: 2_000_000_000, tenant_id: '>>>???~~~', n: 'ÿÿ' });
    expect(token.split('.')[1]).toMatch(/[-_]/);
    expect(token.split('.')[1]).not.toMatch(/=/);
    expect(jwtClaims(token)).toMatchObject({ exp: 2_000_000_000, tenant_id: '>>>???~~~' });
    expect(tokenExpiry(token)).toBe(2_000_000_000_000);
  });

  it('gives undefined for what is not a JWT or has no exp', () => {
    expect(jwtClaims('not a jwt')).toBeUndefined();
    expect(jwtClaims('a.%%%.c')).toBeUndefined();
    expect(jwtClaims(`x.${Buffer.from('42').toString('base64url')}.y`)).toBeUndefined();
    expect(tokenExpiry(fakeJwt({ sub: 'x' }))).toBeUndefined();
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
