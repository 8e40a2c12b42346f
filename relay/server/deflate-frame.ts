// permessage-deflate text frames for the fallback server, built once and written as they are to every socket that negotiated it (RFC 7692, no context takeover).
import zlib from 'node:zlib';

const SYNC_FLUSH = { finishFlush: zlib.constants.Z_SYNC_FLUSH } as const;

/** The header of an unmasked (server to client), final text frame of `length` payload bytes, RSV1 set: "compressed". */
function header(length: number): Buffer {
  const FIN_RSV1_TEXT = 0xc1;
  if (length < 126) return Buffer.from([FIN_RSV1_TEXT, length]);
  if (length < 0x10000) {
    const h = Buffer.allocUnsafe(4);
    h[0] = FIN_RSV1_TEXT;
    h[1] = 126;
    h.writeUInt16BE(length, 2);
    return h;
  }
  const h = Buffer.allocUnsafe(10);
  h[0] = FIN_RSV1_TEXT;
  h[1] = 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

/**
 * One text message as one complete compressed WebSocket frame, header included. The message is deflated on its own
 * (a fresh stream, flushed, its closing `00 00 ff ff` removed as RFC 7692 section 7.2.1 asks), so the same bytes are
 * valid on every socket that negotiated permessage-deflate, whatever it received before.
 */
export function deflatedFrame(message: string | Buffer): Buffer {
  const deflated = zlib.deflateRawSync(message, SYNC_FLUSH);
  const payload = deflated.subarray(0, deflated.length - 4);
  return Buffer.concat([header(payload.length), payload]);
}
