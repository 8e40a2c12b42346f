// Issue 25: an event stream the relay ends is well-formed chunked HTTP/1.1 on both servers, as a proxy parses it (nginx answered 502 to uWS 20.30's).
import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { startTestRelay, token, type TestRelay } from './support/relay-harness.js';
import { nativeLoads } from './support/server-under-test.js';

const db = useTestDatabase();

beforeAll(async () => {
  await createOrders(db);
});
leakGuard(() => db.name);

/** Sends `request` on a raw connection and returns every byte until the server ends the response (or 3 s pass). */
function raw(port: number, request: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (d) => {
      chunks.push(d);
      // a complete chunked body ends with the terminating chunk
      if (Buffer.concat(chunks).includes('\r\n0\r\n\r\n')) s.end();
    });
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

/** Parses a chunked body strictly (RFC 9112 §7.1): each chunk is `<hex>\r\n<data>\r\n`, the last `0\r\n\r\n`, nothing after. */
function dechunk(body: Buffer): string {
  let at = 0;
  let out = '';
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) throw new Error(`no chunk size line at byte ${at}: ${JSON.stringify(body.subarray(at).toString())}`);
    const line = body.subarray(at, eol).toString();
    if (!/^[0-9a-fA-F]+$/.test(line)) throw new Error(`bad chunk size line ${JSON.stringify(line)} at byte ${at}`);
    const size = parseInt(line, 16);
    const data = body.subarray(eol + 2, eol + 2 + size);
    if (body.subarray(eol + 2 + size, eol + 4 + size).toString() !== '\r\n') {
      throw new Error(`chunk of ${size} bytes not followed by CRLF: ${JSON.stringify(body.subarray(eol + 2 + size, eol + 40 + size).toString())}`);
    }
    at = eol + 4 + size;
    if (size === 0) {
      if (at !== body.length) throw new Error(`${body.length - at} bytes after the terminating chunk`);
      return out;
    }
    out += data.toString();
  }
}

const servers = nativeLoads() ? (['uws', 'ws'] as const) : (['ws'] as const);

describe.each(servers)('RELAY_SERVER=%s', (impl) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(db, { RELAY_SERVER: impl });
  });

  it('a token check (the stream the relay ends at once) is a complete chunked response', async () => {
    const t = await token({ tenant_id: 'a' });
    const answer = await raw(relay.port, `GET /sse HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer ${t}\r\n\r\n`);
    const split = answer.indexOf('\r\n\r\n');
    const head = answer.subarray(0, split).toString();
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head).toMatch(/^transfer-encoding: chunked$/im);
    expect(head).toMatch(/^connection: close$/im);
    expect(dechunk(answer.subarray(split + 4))).toMatch(/^data: \{"type":"welcome","tenant":"a","seq":\d+\}\n\n$/);
  });
});
