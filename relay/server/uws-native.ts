// Loads a native uWebSockets.js build: the newer registry build first, then whatever `uWebSockets.js` is installed, and says which runs.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type * as UWS from 'uWebSockets.js';
import { PgRelayError } from '../../client/shared/errors.js';
import { MAX_HEADER_BYTES } from './http-request.js';

export type { UWS };

/** Which native build was loaded. */
export interface UwsBuild {
  /** npm package the binary came from. */
  package: string;
  /** Its version. */
  version: string;
  /** The `.node` file name. */
  binary: string;
  /** Newer builds that were tried first and did not load, with why. */
  skipped: string[];
}

const require = createRequire(import.meta.url);
const binaryName = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;

/** The folder of an installed package (found from its entry point: some packages do not export package.json). */
function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${name}`);
    dir = parent;
  }
  return dir;
}

/**
 * The candidates, newest first. `@btc-vision/uwebsockets.js` (Node 20–25, glibc ≥ 2.38) is optional;
 * `uWebSockets.js` is the npm alias to `@trufflesuite/uws-js-unofficial` (Node 16–20, glibc ≥ 2.27, binaries in
 * `binaries/`) unless the user installed the official release from GitHub in its place (binaries at the top).
 * We load the `.node` file directly: the trufflesuite wrapper silently falls back to a slow JS imitation when the
 * binary does not load, and pgrelay would rather say so.
 */
const candidates: Array<{ pkg: string; files: (dir: string) => string[] }> = [
  { pkg: '@btc-vision/uwebsockets.js', files: (dir) => [path.join(dir, binaryName)] },
  { pkg: 'uWebSockets.js', files: (dir) => [path.join(dir, binaryName), path.join(dir, 'binaries', binaryName)] },
];

let loaded: { uws: typeof UWS; build: UwsBuild } | undefined;

/** The native uWebSockets.js module; throws a {@link PgRelayError} `uws_unavailable` naming every build tried when none loads. */
export function loadUws(): { uws: typeof UWS; build: UwsBuild } {
  if (loaded) return loaded;
  // Newer builds read their header limit (default 4 KiB) from the environment once, as they load; 20.30 has 128 KiB built in.
  process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(MAX_HEADER_BYTES);
  const failures: string[] = [];
  for (const { pkg, files } of candidates) {
    let dir: string;
    try {
      dir = packageDir(pkg);
    } catch (err) {
      // the btc-vision wrapper throws at resolve time when its binary does not load: keep why
      failures.push(`${pkg}: ${err instanceof Error && !/Cannot find (module|package)/.test(err.message) ? err.message.split('\n')[0] : 'not installed'}`);
      continue;
    }
    const file = files(dir).find((f) => existsSync(f));
    if (!file) {
      failures.push(`${pkg}: no ${binaryName} in the package (no build for this Node version and platform)`);
      continue;
    }
    try {
      const uws = require(file) as typeof UWS;
      const version = (require(path.join(dir, 'package.json')) as { version: string }).version;
      loaded = { uws, build: { package: pkg, version, binary: binaryName, skipped: [...failures] } };
      return loaded;
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
      failures.push(`${pkg}: ${reason}`);
    }
  }
  throw new PgRelayError(
    'uws_unavailable',
    `No native uWebSockets.js build loads on Node ${process.versions.node} (${process.platform}-${process.arch}, ABI ${process.versions.modules}); tried ${failures.join('; ')}.`,
  );
}
