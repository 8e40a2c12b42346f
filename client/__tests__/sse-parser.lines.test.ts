// The SSE line parser: events whose text arrives split anywhere, CRLF and LF line ends, comments, multi-line data.
import { describe, expect, it } from 'vitest';
import { sseParser } from '../sse-socket.js';

function parseAll(chunks: string[]): string[] {
  const out: string[] = [];
  const feed = sseParser((d) => out.push(d));
  for (const c of chunks) feed(c);
  return out;
}

/** Every way of cutting `text` in two, and in single characters. */
function splits(text: string): string[][] {
  const all = [[...text]];
  for (let i = 0; i <= text.length; i++) all.push([text.slice(0, i), text.slice(i)]);
  return all;
}

const stream = ': ping\n\ndata: {"type":"welcome","tenant":"acme","seq":7}\n\nid: 12\ndata: {"type":"tx","seq":12}\n\n: ping\nid: reset\ndata: {"type":"reset"}\n\n';
const events = ['{"type":"welcome","tenant":"acme","seq":7}', '{"type":"tx","seq":12}', '{"type":"reset"}'];

describe('sseParser', () => {
  it('gives each event once, however the text is cut into chunks', () => {
    for (const chunks of splits(stream)) expect(parseAll(chunks)).toEqual(events);
  });

  it('takes CRLF and LF line ends, a CRLF cut between its CR and its LF included', () => {
    for (const eol of ['\r\n', '\n']) {
      const text = stream.replaceAll('\n', eol);
      for (const chunks of splits(text)) expect(parseAll(chunks), JSON.stringify(chunks)).toEqual(events);
    }
  });

  it('joins multi-line data with \\n and strips one space after the colon only', () => {
    expect(parseAll(['data: a\ndata:b\ndata:  c\ndata\ndata: \n\n'])).toEqual(['a\nb\n c\n\n']);
  });

  it('skips comments, other fields and blank lines without data; an event cut off by the end of the stream is not given', () => {
    expect(parseAll([': hello\n\nevent: x\nretry: 10\nid: 3\n\n\n\ndatax: no\n\ndata: yes\n\ndata: unfinished\n'])).toEqual(['yes']);
  });
});
