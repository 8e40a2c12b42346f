// The SSE parser of the benchmark's load side (bench/load/sse-connection.ts) reads exactly what the relay writes, however the stream is cut.
import { describe, expect, it } from 'vitest';
import { HEARTBEAT } from '../../relay/server/event-stream.js';
import { sseEvent } from '../../relay/edge/sse.js';
import { SseParser } from '../load/sse-connection.js';

const frames = [
  '{"type":"welcome","v":1}',
  '{"type":"subscribed","id":"o","seq":7}',
  '{"type":"tx","sub":"o","seq":8,"at":"2026-01-01T00:00:00.000001+00:00","changes":[{"table":"public.orders","op":"insert","row":{"id":1,"note":"a: b\\n"}}]}',
  '{"type":"tx","sub":"o","seq":9,"changes":[],"more":true}',
];
const stream = sseEvent(frames[0]!) + sseEvent(frames[1]!, true) + HEARTBEAT + sseEvent(frames[2]!) + HEARTBEAT + sseEvent(frames[3]!);

describe('SseParser', () => {
  it('yields each event\'s data once, skipping heartbeats, wherever the chunks are cut', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: string[] = [];
      const p = new SseParser((d) => got.push(d));
      p.push(stream.slice(0, cut));
      p.push(stream.slice(cut));
      expect(got, `cut at ${cut}`).toEqual(frames);
    }
  });

  it('joins the data lines of one event and waits for its blank line', () => {
    const got: string[] = [];
    const p = new SseParser((d) => got.push(d));
    p.push('id: 3\ndata: {"a":\ndata:1}\n');
    expect(got).toEqual([]);
    p.push('\n');
    expect(got).toEqual(['{"a":\n1}']);
  });
});
