// The load side of bench:sse reads events with the client's parser (client/sse-socket.ts): it must read exactly what the relay writes (sseEvent, HEARTBEAT), however the stream is cut.
import { describe, expect, it } from 'vitest';
import { sseParser } from '../../client/sse-socket.js';
import { HEARTBEAT } from '../../relay/server/event-stream.js';
import { sseEvent } from '../../relay/edge/sse.js';

const frames = [
  '{"type":"welcome","v":1}',
  '{"type":"subscribed","id":"o","seq":7}',
  '{"type":"tx","sub":"o","seq":8,"at":"2026-01-01T00:00:00.000001+00:00","changes":[{"table":"public.orders","op":"insert","row":{"id":1,"note":"a: b\\n"}}]}',
  '{"type":"tx","sub":"o","seq":9,"changes":[],"more":true}',
];
const stream = sseEvent(frames[0]!) + sseEvent(frames[1]!, true) + HEARTBEAT + sseEvent(frames[2]!) + HEARTBEAT + sseEvent(frames[3]!);

describe("the client's SSE parser on the relay's own events", () => {
  it("yields each event's data once, skipping heartbeats, wherever the chunks are cut", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: string[] = [];
      const parse = sseParser((d) => got.push(d));
      parse(stream.slice(0, cut));
      parse(stream.slice(cut));
      expect(got, `cut at ${cut}`).toEqual(frames);
    }
  });

  it('joins the data lines of one event and waits for its blank line', () => {
    const got: string[] = [];
    const parse = sseParser((d) => got.push(d));
    parse('id: 3\ndata: {"a":\ndata:1}\n');
    expect(got).toEqual([]);
    parse('\n');
    expect(got).toEqual(['{"a":\n1}']);
  });
});
