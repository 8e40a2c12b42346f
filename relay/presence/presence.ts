// Presence per tenant (issue 14): which token subs are connected, shared by every relay through Postgres (migration 010).
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { backoff } from '../../client/shared/backoff.js';
import type { PresenceMember } from '../../client/shared/protocol.js';
import type { Principal } from '../routing/auth.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { RelaySocket as WS } from '../routing/socket-data.js';
import type { SocketWriter } from '../routing/socket-writer.js';

/** What {@link Presence} needs from the relay. */
export interface PresenceOptions {
  /** Queries run one at a time: presence takes at most one connection of the pool. */
  pool: Pick<pg.Pool, 'query'>;
  /** Sends a frame to every socket subscribed to a topic, serialized once (the relay's server). */
  publish(topic: string, frame: string): void;
  io: SocketWriter;
  log: Logger;
  metrics: Metrics;
  /** `RELAY_PRESENCE_TTL_MS`: how long this relay's entries live without a refresh; it refreshes every third of it. */
  ttlMs: number;
  /** How long joins and leaves gather into one write, and notifications into one read. Default 50 ms. */
  batchMs?: number;
}

/** One member as this relay knows it: the sockets of this relay it is connected through. */
interface Local {
  readonly key: string;
  readonly tenant: string;
  readonly sub: string;
  readonly name: string | null;
  readonly sockets: Set<WS>;
}

/** One tenant that sockets of this relay are present in. */
interface TenantView {
  /** The members as last read from the database; undefined before the first read. */
  members: Map<string, PresenceMember> | undefined;
  /** Sockets of this relay in this tenant's presence. */
  sockets: number;
  /** Sockets that joined and wait for the full list; they get it after the next read, then diffs through the topic. */
  readonly waiting: Set<WS>;
  /** The database may hold other members than `members`: read again. */
  dirty: boolean;
}

/** The topic of one tenant's presence frames (two elements: never a router topic, which has four). */
export const presenceTopic = (tenant: string): string => JSON.stringify(['presence', tenant]);

/** Why a socket with this token may not join presence, or undefined when it may. */
export function presenceRefusal(p: Principal): string | undefined {
  if (!p.sub) return 'presence: your token has no sub claim (a string of 1 to 256 characters), and presence names each member by it';
  if (p.tenant === null) return 'presence: this all_tenants token has no tenant claim, so there is no tenant to be present in';
  return undefined;
}

/** The members who joined (or changed their display name) and left between two lists; undefined when none did. */
export function presenceDiff(before: ReadonlyMap<string, PresenceMember>, after: ReadonlyMap<string, PresenceMember>): { joins: PresenceMember[]; leaves: PresenceMember[] } | undefined {
  const joins: PresenceMember[] = [];
  const leaves: PresenceMember[] = [];
  for (const [sub, m] of after) {
    const was = before.get(sub);
    if (!was || was.name !== m.name) joins.push(m);
  }
  for (const [sub, m] of before) if (!after.has(sub)) leaves.push(m);
  return joins.length > 0 || leaves.length > 0 ? { joins, leaves } : undefined;
}

/**
 * This relay's side of presence. Joins and leaves of its sockets become, every `batchMs`, one call of
 * relay.presence_sync (one statement, one NOTIFY relay_presence naming the tenants that changed); a notification
 * from any relay makes it re-read those of its tenants in one call of relay.presence_members, and publish what changed
 * to each tenant's topic as one diff frame. A member is keyed by (tenant, sub): several sockets, here or on other
 * relays, are one member, who leaves when the last of them does.
 */
export class Presence {
  /** This relay instance's id in relay.presence (a new one per process: a restarted relay never revives a dead one's rows). */
  readonly id = randomUUID();
  readonly #o: PresenceOptions;
  readonly #batchMs: number;
  /** Members by key (JSON [tenant, sub]) with their sockets on this relay. */
  readonly #local = new Map<string, Local>();
  readonly #bySocket = new Map<WS, Local>();
  /** What relay.presence holds for this relay, as far as this relay has written it. */
  readonly #written = new Map<string, { t: string; s: string }>();
  /** Keys whose database state may differ from #local. */
  readonly #touched = new Set<string>();
  readonly #tenants = new Map<string, TenantView>();
  /** Rewrite every member of this relay (its heartbeat expired and a sweep removed them). */
  #replace = false;
  #heartbeat = false;
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #cycle: Promise<void> | undefined;
  #intervals: Array<ReturnType<typeof setInterval>> = [];
  #closed = false;

  constructor(options: PresenceOptions) {
    this.#o = options;
    this.#batchMs = options.batchMs ?? 50;
  }

  /** Starts the heartbeat refresh and the sweep of expired relays, each every third of the time to live. */
  start(): void {
    const every = Math.max(100, Math.floor(this.#o.ttlMs / 3));
    const refresh = setInterval(() => {
      if (this.#written.size === 0) return;
      this.#heartbeat = true;
      this.#schedule(0);
    }, every);
    // only a relay with sockets in presence needs dead relays gone; the read ignores expired ones meanwhile
    const sweep = setInterval(() => void this.#sweep(), every);
    refresh.unref();
    sweep.unref();
    this.#intervals = [refresh, sweep];
  }

  /** `{"type":"presence","join":true}`: the socket joins its tenant's presence as its token's sub. */
  join(ws: WS): void {
    if (this.#closed) return;
    const p = ws.data.principal;
    const refusal = presenceRefusal(p);
    if (refusal) return this.#o.io.error(ws, 'presence_not_allowed', refusal);
    const tenant = p.tenant!;
    let view = this.#tenants.get(tenant);
    if (!this.#bySocket.has(ws)) {
      const key = JSON.stringify([tenant, p.sub]);
      let member = this.#local.get(key);
      if (!member) {
        member = { key, tenant, sub: p.sub!, name: p.name ?? null, sockets: new Set() };
        this.#local.set(key, member);
        this.#touched.add(key);
      }
      member.sockets.add(ws);
      this.#bySocket.set(ws, member);
      if (!view) this.#tenants.set(tenant, (view = { members: undefined, sockets: 0, waiting: new Set(), dirty: true }));
      view.sockets++;
      this.#o.metrics.presenceSockets.inc();
    }
    // joined already: it gets the full list again
    view!.waiting.add(ws);
    view!.dirty = true;
    this.#schedule();
  }

  /** `{"type":"presence","join":false}`, or the socket closed: it leaves; its member leaves with its last socket on any relay. */
  leave(ws: WS): void {
    const member = this.#bySocket.get(ws);
    if (!member) return;
    this.#bySocket.delete(ws);
    member.sockets.delete(ws);
    ws.unsubscribe(presenceTopic(member.tenant));
    this.#o.metrics.presenceSockets.dec();
    const view = this.#tenants.get(member.tenant)!;
    view.waiting.delete(ws);
    if (--view.sockets === 0) this.#tenants.delete(member.tenant);
    if (member.sockets.size === 0) {
      this.#local.delete(member.key);
      this.#touched.add(member.key);
      this.#schedule();
    }
  }

  /** The socket closed. */
  closed(ws: WS): void {
    this.leave(ws);
  }

  /** An `auth` refresh must keep the socket's sub while it is in presence (its member could not move to another). */
  sameMember(ws: WS, next: Principal): boolean {
    const member = this.#bySocket.get(ws);
    return member === undefined || next.sub === member.sub;
  }

  /** A NOTIFY relay_presence payload: re-read the tenants it names that this relay shows, unless this relay wrote it. */
  notified(payload: string): void {
    let p: { v?: unknown; relay?: unknown; tenants?: unknown; all?: unknown };
    try {
      p = JSON.parse(payload) as typeof p;
    } catch {
      return;
    }
    // after each write this relay reads its tenants again: its own notifications bring nothing new
    if (p === null || p.v !== 1 || (p.relay !== null && p.relay === this.id)) return;
    let any = false;
    if (p.all === true) {
      for (const view of this.#tenants.values()) any = view.dirty = true;
    } else if (Array.isArray(p.tenants)) {
      for (const t of p.tenants) {
        const view = typeof t === 'string' ? this.#tenants.get(t) : undefined;
        if (view) any = view.dirty = true;
      }
    }
    if (any) this.#schedule();
  }

  /** The LISTEN session reconnected: notifications may have been missed, so every tenant is read again. */
  reconnected(): void {
    for (const view of this.#tenants.values()) view.dirty = true;
    if (this.#tenants.size > 0) this.#schedule();
  }

  /** Stops the timers, waits for the write in flight, and removes this relay's members at once (instead of at expiry). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const i of this.#intervals) clearInterval(i);
    clearTimeout(this.#timer);
    await this.#cycle;
    if (this.#written.size === 0) return;
    try {
      await this.#o.pool.query('select relay.presence_end($1)', [this.id]);
    } catch (err) {
      this.#o.log.warn({ err }, `presence: could not remove this relay's members; they leave when its entries expire`);
    }
  }

  #schedule(delay = this.#batchMs): void {
    if (this.#closed || this.#timer !== undefined || this.#cycle !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#cycle = this.#run().finally(() => {
        this.#cycle = undefined;
        if (this.#pending()) this.#schedule(this.#failures > 0 ? backoff(this.#failures, 100, 5_000) : this.#batchMs);
      });
    }, delay);
  }

  #pending(): boolean {
    if (this.#touched.size > 0 || this.#replace || this.#heartbeat) return true;
    for (const view of this.#tenants.values()) if (view.dirty) return true;
    return false;
  }

  async #run(): Promise<void> {
    try {
      // Sockets waiting for the list now get it from this cycle's read, which follows the write of their own member.
      // One that joins meanwhile waits for the next cycle: its member is not written yet, so this read would leave it out.
      const waiting = new Map<string, Set<WS>>();
      for (const [t, view] of this.#tenants) if (view.waiting.size > 0) waiting.set(t, new Set(view.waiting));
      await this.#write();
      await this.#read(waiting);
      if (this.#failures > 0) this.#o.log.info({ failures: this.#failures }, 'presence: the database answers again');
      this.#failures = 0;
    } catch (err) {
      if (this.#failures++ === 0) this.#o.log.warn({ err }, 'presence: the database did not answer; trying again');
    }
  }

  /** One relay.presence_sync for every join and leave gathered since the last one (and the heartbeat). */
  async #write(): Promise<void> {
    const replace = this.#replace;
    const joins: Array<{ t: string; s: string; n: string | null }> = [];
    const leaves: Array<{ t: string; s: string }> = [];
    if (replace) {
      for (const m of this.#local.values()) joins.push({ t: m.tenant, s: m.sub, n: m.name });
    } else {
      for (const key of this.#touched) {
        const m = this.#local.get(key);
        const written = this.#written.get(key);
        if (m && !written) joins.push({ t: m.tenant, s: m.sub, n: m.name });
        else if (!m && written) leaves.push(written);
      }
    }
    const touched = [...this.#touched];
    const heartbeat = this.#heartbeat;
    this.#touched.clear();
    if (joins.length === 0 && leaves.length === 0 && !replace && !heartbeat) return;
    this.#heartbeat = false;
    this.#replace = false;
    const before = this.#written.size;
    let known: boolean;
    try {
      const { rows } = await this.#o.pool.query<{ known: boolean }>('select relay.presence_sync($1, $2, $3, $4, $5) as known',
        [this.id, this.#o.ttlMs, JSON.stringify(joins), JSON.stringify(leaves), replace]);
      known = rows[0]!.known;
    } catch (err) {
      for (const key of touched) this.#touched.add(key);
      this.#heartbeat ||= heartbeat;
      this.#replace ||= replace;
      throw err;
    } finally {
      this.#o.metrics.presenceStatements.inc({ kind: 'sync' });
    }
    if (replace) this.#written.clear();
    for (const j of joins) this.#written.set(JSON.stringify([j.t, j.s]), { t: j.t, s: j.s });
    for (const l of leaves) this.#written.delete(JSON.stringify([l.t, l.s]));
    for (const x of [...joins, ...leaves]) {
      const view = this.#tenants.get(x.t);
      if (view) view.dirty = true;
    }
    if (!known && !replace && before > 0) {
      // a sweep removed this relay's members while it was not refreshing (a long pause, or the database out of reach)
      this.#o.log.warn({ members: this.#local.size }, 'presence: entries of this relay had expired; writing them again');
      this.#replace = true;
    }
  }

  /** One relay.presence_members for every tenant to read again; each tenant's change goes out as one diff frame. */
  async #read(waiting: ReadonlyMap<string, ReadonlySet<WS>>): Promise<void> {
    const tenants: string[] = [];
    for (const [t, view] of this.#tenants) {
      if (!view.dirty) continue;
      view.dirty = false;
      tenants.push(t);
    }
    if (tenants.length === 0) return;
    let rows: Array<{ tenant: string; sub: string; name: string | null }>;
    try {
      rows = (await this.#o.pool.query<{ tenant: string; sub: string; name: string | null }>('select tenant, sub, name from relay.presence_members($1)', [tenants])).rows;
    } catch (err) {
      for (const t of tenants) {
        const view = this.#tenants.get(t);
        if (view) view.dirty = true;
      }
      throw err;
    } finally {
      this.#o.metrics.presenceStatements.inc({ kind: 'read' });
    }
    const fresh = new Map(tenants.map((t) => [t, new Map<string, PresenceMember>()]));
    for (const r of rows) fresh.get(r.tenant)?.set(r.sub, { sub: r.sub, name: r.name });
    for (const [t, members] of fresh) {
      const view = this.#tenants.get(t);
      if (!view) continue; // every socket of this tenant left during the read
      const diff = view.members && presenceDiff(view.members, members);
      view.members = members;
      const topic = presenceTopic(t);
      if (diff) this.#o.publish(topic, JSON.stringify({ type: 'presence', ...diff }));
      const due = [...(waiting.get(t) ?? [])].filter((ws) => view.waiting.delete(ws));
      if (view.waiting.size > 0) view.dirty = true; // joined during this cycle: the next one serves them
      if (due.length === 0) continue;
      const state = JSON.stringify({ type: 'presence', members: [...members.values()] });
      for (const ws of due) if (this.#o.io.send(ws, state)) ws.subscribe(topic);
    }
  }

  async #sweep(): Promise<void> {
    if (this.#closed || this.#tenants.size === 0) return;
    try {
      await this.#o.pool.query('select relay.presence_sweep()');
    } catch (err) {
      this.#o.log.debug({ err }, 'presence: the sweep of expired relays failed; the next one tries again');
    } finally {
      this.#o.metrics.presenceStatements.inc({ kind: 'sweep' });
    }
  }
}
