// What both servers share about HTTP: a request with its headers copied, query decoding, status lines and the port error.
import { STATUS_CODES } from 'node:http';
import { PgRelayError } from '../../client/shared/errors.js';
import type { HttpReply, HttpRequest } from './server.js';

const noBody = Promise.resolve(Buffer.alloc(0));

/** What a handler that threw (or rejected) answers. */
export const internalError: HttpReply = { status: 500, headers: { 'content-type': 'application/json' }, body: '{"error":"internal"}' };

/**
 * The largest header section either server reads (uWebSockets.js 20.30's own limit): a token over the relay's 8 KiB
 * gets its 401 `token too large`, not a 431 from the server, whichever server and build runs.
 */
export const MAX_HEADER_BYTES = 128 * 1024;

/** A request whose headers were copied into `headers` (lower-case names). */
export function copiedRequest(method: string, path: string, rawQuery: string, headers: Map<string, string>, remoteAddress: string, body?: Promise<Buffer | undefined>): HttpRequest {
  return {
    method,
    path,
    remoteAddress,
    header: (name) => headers.get(name) ?? '',
    query: (name) => queryValue(rawQuery, name),
    body: () => body ?? noBody,
  };
}

/** The first value of `name` in a raw query string, decoded as forms are (`+` is a space); a malformed `%` escape is kept as written. */
export function queryValue(rawQuery: string, name: string): string | undefined {
  for (const pair of rawQuery.split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq) !== name) continue;
    const value = pair.slice(eq + 1).replace(/\+/g, ' ');
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

/** `200 OK`, `413 Payload Too Large`… */
export function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

export function portUnavailable(host: string, port: number): PgRelayError {
  return new PgRelayError('port_unavailable', `Cannot listen on ${host}:${port}: the port is in use or not allowed; set PORT (or --port) to a free port.`);
}

/** Collects a body of at most `max` bytes; resolves undefined once it is larger (the rest is ignored). */
export class BodyReader {
  readonly #max: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #resolve!: (b: Buffer | undefined) => void;
  readonly done: Promise<Buffer | undefined> = new Promise((r) => (this.#resolve = r));

  constructor(max: number) {
    this.#max = max;
  }

  /** `chunk` is copied: uWS reuses its memory after the callback. */
  push(chunk: Uint8Array, last: boolean): void {
    if (this.#size < 0) return;
    this.#size += chunk.byteLength;
    if (this.#size > this.#max) {
      this.#size = -1;
      this.#chunks = [];
      return this.#resolve(undefined);
    }
    this.#chunks.push(Buffer.from(chunk));
    if (last) this.#resolve(Buffer.concat(this.#chunks));
  }

  /** The client went away: nobody reads this body. */
  abort(): void {
    this.#size = -1;
    this.#chunks = [];
    this.#resolve(undefined);
  }
}
