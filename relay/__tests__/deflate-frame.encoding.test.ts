// The fallback server's compressed frames (relay/server/deflate-frame.ts): each header form, a payload any permessage-deflate reader inflates back, and the fallback writing them itself.
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { deflatedFrame } from '../server/deflate-frame.js';
import { NodeServer } from '../server/node-server.js';
import type { NodeSocket } from '../server/node-socket.js';

/** Reads a server frame as RFC 6455 says: first byte, then a 7-, 16- or 64-bit length, then the payload. */
function parse(frame: Buffer): { first: number; lengthBytes: number; payload: Buffer } {
  const short = frame[1]!;
  expect(short & 0x80).toBe(0); // a server never masks
  const [length, at] = short === 126 ? [frame.readUInt16BE(2), 4] : short === 127 ? [Number(frame.readBigUInt64BE(2)), 10] : [short, 2];
  expect(frame.length).toBe(at + length);
  return { first: frame[0]!, lengthBytes: at - 2, payload: frame.subarray(at) };
}

/** What a reader does with a compressed message (RFC 7692 section 7.2.2): append 00 00 ff ff and inflate (no final block follows). */
const inflate = (payload: Buffer) =>
  zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString();

describe('deflatedFrame', () => {
  it.each([
    ['a small frame (7-bit length)', '{"type":"pong"}', 0],
    ['a tx frame of a few hundred bytes (16-bit length)', JSON.stringify({ type: 'tx', sub: 's1', seq: 121, changes: Array.from({ length: 40 }, (_, i) => ({ table: 'public.orders', op: 'insert', pk: { id: String(i) }, row: { id: String(i), customer: `Customer ${i}`, total: `${i}.50` } })) }), 2],
    ['a large page that deflates to over 64 KiB (64-bit length)', JSON.stringify({ type: 'snapshot', rows: Array.from({ length: 2000 }, () => randomBytes(64).toString('hex')) }), 8],
  ])('%s: one final text frame, RSV1 set, that inflates back to the message', (_what, message, lengthBytes) => {
    const { first, lengthBytes: got, payload } = parse(deflatedFrame(message));
    expect(first).toBe(0xc1); // FIN, RSV1 (compressed), opcode 1 (text)
    expect(got).toBe(lengthBytes);
    expect(inflate(payload)).toBe(message);
    // the trailing 00 00 ff ff of the flush is left out, as the RFC asks
    expect(payload.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff]))).toBe(false);
  });

  it('takes a Buffer as well as a string, and gives the same bytes for the same message', () => {
    const m = '{"type":"tx","sub":"s1","seq":1,"changes":[]}';
    expect(deflatedFrame(Buffer.from(m)).equals(deflatedFrame(m))).toBe(true);
  });
});

describe('the fallback server with compression', () => {
  it('writes the frames itself to a socket that negotiated permessage-deflate (ws would keep a zlib stream per socket), and plainly to one that did not', async () => {
    const server = new NodeServer({ impl: 'ws', package: 'ws', version: '', chosen: 'forced', skipped: [] });
    const opened: Array<NodeSocket<unknown>> = [];
    server.websocket('/ws', {
      compression: true, maxPayloadLength: 1 << 20, idleTimeout: 60, maxBackpressure: 1 << 20,
      upgrade: () => ({ accept: {}, protocol: '' }),
      open: (ws) => {
        opened.push(ws as NodeSocket<unknown>);
        ws.subscribe('t');
      },
      message() {}, drain() {}, close() {},
    });
    const port = await server.listen('127.0.0.1', 0);
    const clients = [true, true, false].map((offer) => new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: offer }));
    try {
      const received = clients.map((c) => new Promise<string>((resolve) => c.once('message', (m) => resolve(m.toString()))));
      await Promise.all(clients.map((c) => new Promise((resolve) => c.once('open', resolve))));
      await expect.poll(() => opened.length).toBe(3);
      expect(opened.map((s) => s.deflates).sort()).toEqual([false, true, true]);
      const frame = JSON.stringify({ type: 'tx', sub: 's1', seq: 1, changes: [{ table: 'public.orders', op: 'insert', row: { customer: 'Ada Lovelace' } }] });
      server.publish('t', frame);
      expect(await Promise.all(received)).toEqual([frame, frame, frame]);
      expect(clients.map((c) => c.extensions)).toEqual(['permessage-deflate', 'permessage-deflate', '']);
    } finally {
      for (const c of clients) c.terminate();
      server.close();
    }
  });
});
