// The client's one error class: a stable string `code`, the WebSocket close code when a close caused it, and the cause.

/**
 * `code` is one of: `closed` (the relay closed with a fatal code, see `closeCode`), `token_expired`
 * (a static token expired: nothing can renew it), `token_error` (the token function threw), `bad_frame`
 * (a frame that is not JSON), `handler_error` (one of your handlers threw), or the relay's own
 * `ErrorCode` from an `error` frame (`table_not_allowed`, `bad_filter`, …).
 */
export class RelayError extends Error {
  // `declare`: assigned once in the constructor, not also defined as empty class fields first
  declare readonly code: string;
  declare readonly closeCode?: number;

  constructor(code: string, message: string, closeCode?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RelayError';
    this.code = code;
    this.closeCode = closeCode;
  }
}
