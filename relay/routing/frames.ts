// Serializes tx frames: one frame per (transaction, subscription), split at the frame limit with `more`.
import type { RelayTx } from '../feed/relay-tx.js';

/** The frame prefix shared by all frames of one transaction for one subscription id. */
function head(subJson: string, tx: RelayTx): string {
  return `{"type":"tx","sub":${subJson},"seq":${tx.seq},"at":${JSON.stringify(tx.at)},"origin":${JSON.stringify(tx.origin)},"changes":[`;
}

/**
 * Frames for `changes` (wire JSON of each change): as few as fit under `maxFrame` bytes, each but the
 * last marked `"more":true`. A single change larger than the limit travels alone in one frame.
 */
export function txFrames(subId: string, tx: RelayTx, changes: readonly string[], maxFrame: number): string[] {
  const prefix = head(JSON.stringify(subId), tx);
  let total = prefix.length + 2;
  for (const c of changes) total += c.length + 1;
  if (total <= maxFrame) return [`${prefix}${changes.join(',')}]}`];
  const frames: string[] = [];
  let batch: string[] = [];
  let size = prefix.length + 16;
  for (const c of changes) {
    if (batch.length > 0 && size + c.length + 1 > maxFrame) {
      frames.push(`${prefix}${batch.join(',')}],"more":true}`);
      batch = [];
      size = prefix.length + 16;
    }
    batch.push(c);
    size += c.length + 1;
  }
  frames.push(`${prefix}${batch.join(',')}]}`);
  return frames;
}

export function snapshotFrame(subId: string, seq: number, rows: readonly string[], more: boolean): string {
  return `{"type":"snapshot","sub":${JSON.stringify(subId)},"seq":${seq},"rows":[${rows.join(',')}],"more":${more}}`;
}

export function errorFrame(code: string, message: string, id?: string): string {
  return JSON.stringify(id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id });
}
