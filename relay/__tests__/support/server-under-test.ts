// The server implementation relay tests run against: RELAY_SERVER from the test run's environment (`.ci/run` runs them once per implementation).
import { PgRelayError } from '../../../client/shared/errors.js';
import type { ServerImpl } from '../../server/server.js';
import { loadUws } from '../../server/uws-native.js';

/** Environment for every relay a test starts (in-process or as a child): RELAY_SERVER passed on when the run sets it. */
export const serverEnv: Readonly<Record<string, string>> = process.env.RELAY_SERVER ? { RELAY_SERVER: process.env.RELAY_SERVER } : {};

/** Whether a native uWebSockets.js build loads here (this Node, this libc). */
export function nativeLoads(): boolean {
  try {
    loadUws();
    return true;
  } catch (err) {
    if (err instanceof PgRelayError && err.code === 'uws_unavailable') return false;
    throw err;
  }
}

/** What a relay started with {@link serverEnv} must run on: RELAY_SERVER when it names one, else uws where a native build loads here. */
export function expectedServer(): ServerImpl {
  const forced = process.env.RELAY_SERVER;
  if (forced === 'uws' || forced === 'ws') return forced;
  return nativeLoads() ? 'uws' : 'ws';
}
