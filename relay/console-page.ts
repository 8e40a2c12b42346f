// The console's static files (relay/console/assets/): read once, served with an ETag and cache headers that suit each.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One static file as the relay serves it. */
export interface StaticFile {
  readonly body: Buffer;
  readonly contentType: string;
  /** A strong validator: the hash of the body. */
  readonly etag: string;
  readonly cacheControl: string;
}

/** The folder from the sources (relay/console/assets) or, from the build (dist/relay), the package's relay/console/assets. */
function consoleDir(): string {
  for (const rel of ['./console/assets/', '../../relay/console/assets/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error('the console files (relay/console/assets/index.html) are missing from this installation');
}

function load(dir: string, name: string, contentType: string, cacheControl: string): StaticFile {
  const body = readFileSync(`${dir}${name}`);
  return { body, contentType, cacheControl, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/**
 * The page revalidates on every load (`no-cache` + ETag: a relay upgrade shows at once, an unchanged page costs a 304);
 * the icon is cached for a day.
 */
export function loadConsoleFiles(): { page: StaticFile; favicon: StaticFile } {
  const dir = consoleDir();
  return {
    page: load(dir, 'index.html', 'text/html; charset=utf-8', 'no-cache'),
    favicon: load(dir, 'favicon.svg', 'image/svg+xml', 'public, max-age=86400'),
  };
}
