// Parses and validates client messages; every refusal carries a stable error code and one sentence.
import { z } from 'zod';
import type { ClientMessage, ErrorCode } from '../client/protocol.js';

const subscribe = z.object({
  type: z.literal('subscribe'),
  id: z.string().min(1).max(128),
  table: z.string().min(1).max(200),
  since: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  filter: z.record(z.string(), z.unknown()).optional(),
  snapshot: z.boolean().optional(),
}).strict();
const unsubscribe = z.object({ type: z.literal('unsubscribe'), id: z.string().min(1).max(128) }).strict();
const auth = z.object({ type: z.literal('auth'), token: z.string().min(1).max(8192) }).strict();
const ping = z.object({ type: z.literal('ping') }).strict();

const schemas = { subscribe, unsubscribe, auth, ping } as const;

export type Parsed = { ok: true; message: ClientMessage } | { ok: false; code: ErrorCode; message: string; id?: string };

/** Parses one text frame. */
export function parseClientMessage(text: string): Parsed {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad_message', message: 'message is not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, code: 'bad_message', message: 'message must be a JSON object' };
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== 'string') return { ok: false, code: 'bad_message', message: 'message has no "type"' };
  // own keys only: "constructor" or "toString" must not find Object.prototype members
  const schema = Object.hasOwn(schemas, type) ? schemas[type as keyof typeof schemas] : undefined;
  if (!schema) return { ok: false, code: 'unknown_type', message: `unknown message type ${JSON.stringify(type.slice(0, 40))} (use subscribe, unsubscribe, auth or ping)` };
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const id = typeof (raw as { id?: unknown }).id === 'string' ? ((raw as { id: string }).id).slice(0, 128) : undefined;
    const code = type === 'subscribe' ? 'bad_subscription' : 'bad_message';
    if (issue.code === 'unrecognized_keys') {
      return { ok: false, code, message: `${type}: unknown field ${issue.keys.join(', ')}`, ...(id ? { id } : {}) };
    }
    const field = issue.path.join('.') || 'message';
    return { ok: false, code, message: `${type}: field ${field} ${describeIssue(issue)}`, ...(id ? { id } : {}) };
  }
  const message = parsed.data as ClientMessage;
  if (message.type === 'subscribe' && message.since !== undefined && message.snapshot) {
    return { ok: false, code: 'bad_subscription', message: 'subscribe: give since or snapshot, not both', id: message.id };
  }
  return { ok: true, message };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': return `must be ${issue.expected}`;
    case 'too_small': return 'is too small or empty';
    case 'too_big': return 'is too large';
    case 'invalid_value': return 'has an unexpected value';
    default: return 'is invalid';
  }
}
