// Parses and validates client messages; every refusal carries a stable error code and one sentence.
import { z } from 'zod';
import type { ClientMessage, ErrorCode } from '../../client/shared/protocol.js';

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
const presence = z.object({ type: z.literal('presence'), join: z.boolean() }).strict();

const schemas = { subscribe, unsubscribe, auth, ping, presence } as const;

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
  if (!schema) return { ok: false, code: 'unknown_type', message: `unknown message type ${JSON.stringify(type.slice(0, 40))} (use subscribe, unsubscribe, auth, ping or presence)` };
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const id = typeof (raw as { id?: unknown }).id === 'string' ? ((raw as { id: string }).id).slice(0, 128) : undefined;
    const code = type === 'subscribe' ? 'bad_subscription' : 'bad_message';
    if (issue.code === 'unrecognized_keys') {
      return { ok: false, code, message: `${type}: unknown field ${issue.keys.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}; a ${type} message takes ${fieldsOf[type]}.`, ...(id ? { id } : {}) };
    }
    const field = String(issue.path[0] ?? 'message');
    const given = (raw as Record<string, unknown>)[field];
    const what = fieldRules[`${type}.${field}`] ?? `${field} is not valid`;
    const message = given === undefined ? `${type}: ${field} is missing; ${what}.` : `${type}: ${what}; got ${shown(given)}.`;
    return { ok: false, code, message, ...(id ? { id } : {}) };
  }
  const message = parsed.data as ClientMessage;
  if (message.type === 'subscribe' && message.since !== undefined && message.snapshot) {
    return { ok: false, code: 'bad_subscription', message: 'subscribe: give since or snapshot, not both', id: message.id };
  }
  return { ok: true, message };
}

/** The fields each message takes, for a message naming an unknown one. */
const fieldsOf: Record<string, string> = {
  subscribe: 'type, id, table and optionally since, filter or snapshot',
  unsubscribe: 'type and id',
  auth: 'type and token',
  ping: 'only type',
  presence: 'type and join',
};

/** What each field must be, said the way a developer fixing the call needs it. */
const fieldRules: Record<string, string> = {
  'subscribe.id': 'id must be a string of 1 to 128 characters that names the subscription (its frames carry it)',
  'subscribe.table': 'table must be a table name such as "public.orders" (or "orders", meaning public.orders)',
  'subscribe.since': 'since must be a whole number of 0 or more: the seq of the last transaction you applied (leave it out to start from now)',
  'subscribe.filter': 'filter must be an object of columns such as {"status": {"eq": "open"}}',
  'subscribe.snapshot': 'snapshot must be true or false',
  'unsubscribe.id': 'id must be the id (a string) of one of your subscriptions',
  'auth.token': 'token must be a JWT, a string of at most 8192 characters',
  'presence.join': 'join must be true (join the presence of your tenant) or false (leave it); who you are comes from your token',
};

/** A short rendering of the value the client sent. */
function shown(v: unknown): string {
  const text = typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
