// Issue 16: which server runs (RELAY_SERVER), the one warning of the automatic fallback, and a forced native server that cannot load.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PgRelayError } from '../../client/shared/errors.js';
import { createLogger } from '../ops/log.js';
import { chooseServer, logServer } from '../server/choose-server.js';
import { runCli } from './support/cli-process.js';
import { nativeLoads } from './support/server-under-test.js';

const NO_NATIVE = 'No native uWebSockets.js build loads on Node 22.23.3 (linux-x64, ABI 127); tried @btc-vision/uwebsockets.js: GLIBC_2.38 not found; uWebSockets.js: no uws_linux_x64_127.node in the package.';
const noNative = () => {
  throw new PgRelayError('uws_unavailable', NO_NATIVE);
};

/** The JSON log lines `logServer` writes for `info`. */
function logLines(info: ReturnType<typeof chooseServer>['info']): Array<{ level: string; msg: string }> {
  const lines: string[] = [];
  logServer(createLogger('debug', { write: (l) => void lines.push(l) }, 'json'), info);
  return lines.map((l) => JSON.parse(l) as { level: string; msg: string });
}

describe('RELAY_SERVER', () => {
  it('auto: the ws fallback where no native build loads, with one warning that names why and how to silence it', () => {
    const plan = chooseServer('auto', noNative);
    expect(plan.info).toMatchObject({ impl: 'ws', package: 'ws', chosen: 'auto', fallbackReason: NO_NATIVE });
    const lines = logLines(plan.info);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe('warn');
    expect(lines[0]!.msg).toContain(`because no native uWebSockets.js build loads on Node 22.23.3 (linux-x64, ABI 127); tried @btc-vision/uwebsockets.js: GLIBC_2.38 not found; uWebSockets.js: no uws_linux_x64_127.node in the package.`);
    expect(lines[0]!.msg).toContain('set RELAY_SERVER=ws to choose the fallback without this warning');
  });

  it('uws: a native build that cannot load is a start error naming every build tried', () => {
    expect(() => chooseServer('uws', noNative)).toThrow(new PgRelayError('uws_unavailable',
      'RELAY_SERVER is uws, but no native uWebSockets.js build loads on Node 22.23.3 (linux-x64, ABI 127); tried @btc-vision/uwebsockets.js: GLIBC_2.38 not found; uWebSockets.js: no uws_linux_x64_127.node in the package: install a native build for this Node version (docs/operations.md, "Native WebSocket server"), or unset RELAY_SERVER to serve with the ws fallback.'));
  });

  it('ws: the fallback without trying the native builds, logged as a choice, not a warning', () => {
    const plan = chooseServer('ws', () => {
      throw new Error('the native loader must not run');
    });
    expect(plan.info).toMatchObject({ impl: 'ws', chosen: 'forced' });
    expect(plan.info.fallbackReason).toBeUndefined();
    expect(logLines(plan.info).map((l) => [l.level, l.msg])).toEqual([['info', `serving with the ws fallback (ws@${plan.info.version} on node:http), as RELAY_SERVER=ws asks`]]);
  });

  it('auto on this machine: native where a build loads, and other loader errors are not swallowed', () => {
    expect(chooseServer('auto').info.impl).toBe(nativeLoads() ? 'uws' : 'ws');
    expect(() => chooseServer('auto', () => {
      throw new Error('a bug in the loader');
    })).toThrow('a bug in the loader');
  });
});

describe('pgrelay start with RELAY_SERVER=uws where no native build loads', () => {
  // Only where the native server cannot load (the Node 22 pass of .ci/run, or a glibc older than every build).
  it.skipIf(nativeLoads())('exits 1 with one sentence before it starts any Postgres', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-start-'));
    try {
      const p = runCli(['start'], { RELAY_SERVER: 'uws', RELAY_DATA_DIR: stateDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' });
      expect(await p.exited).toBe(1);
      expect(p.stderr().trim()).toMatch(/^pgrelay: RELAY_SERVER is uws, but no native uWebSockets\.js build loads on Node [\d.]+ .*unset RELAY_SERVER to serve with the ws fallback\.$/);
      expect(p.output()).not.toMatch(/embedded Postgres/);
      expect(await readdir(stateDir)).toEqual([]);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
