// Large frames to a slow reader arrive whole and in order, on both servers: uWS 20.30 lost the payload of a frame of
// 16 KiB or more whose header alone went to its buffer (a corrupt stream: the client fails on invalid UTF-8 and stalls).
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { until } from '../../db/testing/index.js';
import { chooseServer } from '../server/choose-server.js';
import type { RelayServer, ServerSocket } from '../server/server.js';
import { needsLargeSendGuard } from '../server/uws-socket.js';
import { nativeLoads } from './support/server-under-test.js';

const FRAMES = 1500;
const HIGH = 128 * 1024;
const LOW = 32 * 1024;

/** Frame `i`: 16 KiB to ~144 KiB of text that says which frame it is, so that a lost or shifted byte shows. */
function frame(i: number): string {
  const size = 16 * 1024 + ((i * 7_919) % (128 * 1024));
  const unit = `${i}|`;
  return JSON.stringify({ i, fill: unit.repeat(Math.ceil(size / unit.length)).slice(0, size) });
}

let server: RelayServer | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

const impls = ['ws', ...(nativeLoads() ? ['uws' as const] : [])] as const;

describe.each(impls)('large frames to a reader that keeps pausing (%s)', (impl) => {
  it(`${FRAMES} frames of 16 to 144 KiB, sent as the relay's catch-up sends (cork, send, wait for the drain), all arrive intact`, async () => {
    const s = chooseServer(impl).create();
    server = s;
    const drained = new Map<ServerSocket<object>, () => void>();
    let sent = 0;
    const send = async (ws: ServerSocket<object>) => {
      for (let i = 0; i < FRAMES; i++) {
        let status = '';
        ws.cork(() => (status = ws.send(frame(i))));
        expect(status).not.toBe('dropped');
        sent = i + 1;
        while (ws.bufferedAmount() > HIGH) {
          await new Promise<void>((resolve) => {
            drained.set(ws, resolve);
            setTimeout(resolve, 250);
          });
          if (ws.bufferedAmount() <= LOW) break;
        }
      }
    };
    s.websocket<object>('/ws', {
      maxPayloadLength: 1024,
      idleTimeout: 60,
      maxBackpressure: 64 * 1024 * 1024,
      upgrade: () => ({ accept: {}, protocol: '' }),
      open: (ws) => void send(ws),
      message: () => undefined,
      drain: (ws) => drained.get(ws)?.(),
      close: () => undefined,
    });
    const port = await s.listen('127.0.0.1', 0);

    const client = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
    const got: number[] = [];
    const bad: string[] = [];
    let failure: Error | undefined;
    client.on('error', (err) => (failure = err));
    client.on('message', (data) => {
      const text = data.toString();
      const f = JSON.parse(text) as { i: number };
      if (text !== frame(f.i)) bad.push(`frame ${f.i} altered`);
      got.push(f.i);
      // every 10 frames the reader stops for a moment: the server's buffer fills, then drains into a full kernel buffer
      if (got.length % 10 === 0) {
        (client as any)._socket.pause();
        setTimeout(() => (client as any)._socket.resume(), 5);
      }
    });
    await once(client, 'open');
    await until(() => got.length === FRAMES || failure !== undefined, { timeoutMs: 15_000, what: () => `${FRAMES} frames (got ${got.length}, sent ${sent})` });
    expect(failure?.message).toBeUndefined();
    expect(bad).toEqual([]);
    expect(got).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
    client.close();
    await once(client, 'close');
  }, 60_000);
});

describe('which native builds need the guard', () => {
  it('20.30 (the Node 20 build) and the unchecked releases before 20.34 do; 20.57 (the newer build) does not', () => {
    expect(['20.30.0-unofficial.0', '20.33.0', '19.3.0'].map(needsLargeSendGuard)).toEqual([true, true, true]);
    expect(['20.34.0', '20.57.0', '21.0.0'].map(needsLargeSendGuard)).toEqual([false, false, false]);
  });
});
