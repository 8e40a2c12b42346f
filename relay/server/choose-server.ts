// Which server runs (RELAY_SERVER): native uWebSockets.js where a build loads, else the ws fallback; decided before anything starts.
import { createRequire } from 'node:module';
import { PgRelayError } from '../../client/shared/errors.js';
import { NodeServer } from './node-server.js';
import type { RelayServer, ServerInfo } from './server.js';
import { loadUws } from './uws-native.js';
import { UwsServer } from './uws-server.js';

/** `RELAY_SERVER`: `auto` (the default), `uws` or `ws`. */
export type ServerChoice = 'auto' | 'uws' | 'ws';

/** The chosen server: what it is, and how to make one. */
export interface ServerPlan {
  readonly info: ServerInfo;
  create(): RelayServer;
}

const wsVersion = (createRequire(import.meta.url)('ws/package.json') as { version: string }).version;

function fallback(chosen: ServerInfo['chosen'], fallbackReason?: string): ServerPlan {
  const info: ServerInfo = { impl: 'ws', package: 'ws', version: wsVersion, chosen, skipped: [], ...(fallbackReason ? { fallbackReason } : {}) };
  return { info, create: () => new NodeServer(info) };
}

/**
 * Decides which server runs. `uws` that cannot load throws a PgRelayError `uws_unavailable` naming every build tried;
 * `auto` falls back to ws and says why in `info.fallbackReason`. `load` is the native loader (tests pass a failing one).
 */
export function chooseServer(choice: ServerChoice, load: typeof loadUws = loadUws): ServerPlan {
  if (choice === 'ws') return fallback('forced');
  let native: ReturnType<typeof loadUws>;
  try {
    native = load();
  } catch (err) {
    if (!(err instanceof PgRelayError) || err.code !== 'uws_unavailable') throw err;
    if (choice === 'uws') {
      throw new PgRelayError('uws_unavailable', `RELAY_SERVER is uws, but ${err.message.replace(/^No/, 'no').replace(/\.$/, '')}: install a native build for this Node version (docs/operations.md, "Native WebSocket server"), or unset RELAY_SERVER to serve with the ws fallback.`, { cause: err });
    }
    return fallback('auto', err.message);
  }
  const { uws, build } = native;
  const info: ServerInfo = { impl: 'uws', package: build.package, version: build.version, binary: build.binary, chosen: choice === 'uws' ? 'forced' : 'auto', skipped: build.skipped };
  return { info, create: () => new UwsServer(uws, info) };
}

/**
 * The start-up lines naming the server: the automatic fallback is a warning that says why the native build did not
 * load; a newer native build skipped for an older one (an older glibc) is a detail, logged at debug.
 */
export function logServer(log: { debug(msg: string): void; info(obj: object, msg: string): void; warn(obj: object, msg: string): void }, info: ServerInfo): void {
  for (const skipped of info.skipped) log.debug(`uWebSockets.js build skipped: ${skipped}`);
  if (info.impl === 'uws') {
    log.info({ server: info }, `native uWebSockets.js build in use: ${info.package}@${info.version} (${info.binary})`);
  } else if (info.chosen === 'forced') {
    log.info({ server: info }, `serving with the ws fallback (ws@${info.version} on node:http), as RELAY_SERVER=ws asks`);
  } else {
    log.warn({ server: info }, `serving with the ws fallback (ws@${info.version} on node:http) because ${info.fallbackReason!.replace(/^No/, 'no').replace(/\.$/, '')}. ${FALLBACK_COST} Install a native build (docs/operations.md#native-websocket-server), or set RELAY_SERVER=ws to choose the fallback without this warning.`);
  }
}

/** What the fallback costs, measured side by side (bench/RESULTS.md, "Server implementations"). */
export const FALLBACK_COST = 'The protocol, limits and guarantees are the same; the fallback holds about 6x the memory per idle socket and spends about 1.4x the CPU per delivery at high fan-out.';
