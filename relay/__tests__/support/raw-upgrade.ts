// A bare WebSocket upgrade request (no ws library checks on the offered protocols), for fuzzing and storms: reports the HTTP status, closes at once.
import http from 'node:http';

export interface UpgradeOutcome {
  /** 101 when the relay upgraded, else its HTTP status; 0 when the connection ended without a response. */
  status: number;
  body: string;
  /** The connection error when there was no response (e.g. ECONNRESET for an oversized header). */
  error?: string;
}

const KEY = Buffer.from('pgrelay-fuzz-key').toString('base64');

/** Header values Node can send as they are; anything else must travel in the query string. */
export function headerSafe(s: string): boolean {
  return /^[\t\x20-\x7e]*$/.test(s);
}

/** Sends one upgrade to `/ws` with `token` as `bearer.<token>` (or as `?token=`), then closes whatever came back. */
export function rawUpgrade(port: number, token: string | null, via: 'protocol' | 'query' = 'protocol', extraHeaders: Record<string, string> = {}): Promise<UpgradeOutcome> {
  const headers: Record<string, string> = {
    connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': KEY, ...extraHeaders,
  };
  let path = '/ws';
  if (token !== null && via === 'protocol') headers['sec-websocket-protocol'] = `pgrelay.v1, bearer.${token}`;
  else {
    headers['sec-websocket-protocol'] = 'pgrelay.v1';
    if (token !== null) path = `/ws?token=${encodeURIComponent(token)}`;
  }
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, headers });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => resolve({ status: res.statusCode ?? 0, body, error: err.message }));
    });
    req.on('error', (err) => resolve({ status: 0, body: '', error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.end();
  });
}

/** Runs `tasks` with at most `limit` in flight; resolves with their results in order. */
export async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return out;
}
