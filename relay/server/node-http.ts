// node:http plumbing shared by the fallback server and the METRICS_PORT listener: a request copied as uWS reads it, a reply written, a handler's answer awaited, writes corked.
import type http from 'node:http';
import { copiedRequest } from './http-request.js';
import type { HttpReply, HttpRequest } from './server.js';

export const notFound: HttpReply = { status: 404, headers: { 'content-type': 'application/json' }, body: '{"error":"not_found"}' };

/** The path and the raw query of a request's URL. */
export function splitUrl(url = '/'): [string, string] {
  const q = url.indexOf('?');
  return q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
}

/** The request with its headers copied as uWS reads them: the first of repeated headers. */
export function nodeRequest(req: http.IncomingMessage, body?: Promise<Buffer | undefined>): HttpRequest {
  const headers = new Map<string, string>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!headers.has(name)) headers.set(name, req.rawHeaders[i + 1]!);
  }
  const [path, query] = splitUrl(req.url);
  return copiedRequest(req.method ?? 'GET', path, query, headers, req.socket.remoteAddress ?? '', body);
}

/** Writes `reply`, unless the client went away meanwhile. */
export function writeReply(res: http.ServerResponse, reply: HttpReply): void {
  if (res.destroyed || res.writableEnded) return; // the client went away meanwhile
  res.statusCode = reply.status;
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  res.end(reply.body);
}

/** Calls `produce` and hands its reply (now or once it settles) to `deliver`; a throw or rejection becomes a 500. */
export function answer<T>(produce: () => T | Promise<T>, deliver: (out: T) => void, failed: T): void {
  let out: T | Promise<T>;
  try {
    out = produce();
  } catch {
    out = failed;
  }
  if (out instanceof Promise) out.then(deliver, () => deliver(failed));
  else deliver(out);
}

/** Runs `fn` with the writes of `stream` gathered into one system call. */
export function corked(stream: { cork(): void; uncork(): void }, fn: () => void): void {
  stream.cork();
  try {
    fn();
  } finally {
    stream.uncork();
  }
}
