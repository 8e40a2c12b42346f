// Presence per tenant (issue 14): which token subs are connected, shared by every relay through Postgres (migration 010).
import { backoff } from '../../client/shared/backoff.js';
import type { PresenceMember } from '../../client/shared/protocol.js';
import type { Principal } from '../routing/auth.js';
import type { RelaySocket as WS } from '../routing/socket-data.js';
import type { SocketWriter } from '../routing/socket-writer.js';
import { presenceDiff } from './presence-diff.js';
import { PresenceStore, type PresenceStoreOptions, type PresentMember } from './presence-store.js';

/** What {@link Presence} needs from the relay. */
export interface PresenceOptions extends PresenceStoreOptions {
  /** Sends a frame to every socket subscribed to a topic, serialized once (the relay's server). */
  publish(topic: string, frame: string): void;
  io: SocketWriter;
  /** How long joins and leaves gather into one write, and notifications into one read. Default 50 ms. */
  batchMs?: number;
}

/** One member as this relay knows it: the sockets of this relay it is connected through. */
interface Local extends PresentMember {
  readonly key: string;
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

/**
 * This relay's side of presence. Joins and leaves of its sockets become, every `batchMs`, one call of
 * relay.presence_sync (one statement, one NOTIFY relay_presence naming the tenants that changed); a notification
 * from any relay makes it re-read those of its tenants in one call of relay.presence_members, and publish what changed
 * to each tenant's topic as one diff frame. A member is keyed by (tenant, sub): several sockets, here or on other
 * relays, are one member, who leaves when the last of them does.
 */
export class Presence {
  readonly #o: PresenceOptions;
  readonly #batchMs: number;
  readonly #store: PresenceStore;
  /** Members by key (JSON [tenant, sub]) with their sockets on this relay. */
  readonly #local = new Map<string, Local>();
  readonly #bySocket = new Map<WS, Local>();
  readonly #tenants = new Map<string, TenantView>();
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #cycle: Promise<void> | undefined;
  #intervals: Array<ReturnType<typeof setInterval>> = [];
  #closed = false;

  constructor(options: PresenceOptions) {
    this.#o = options;
    this.#batchMs = options.batchMs ?? 50;
    this.#store = new PresenceStore(options);
  }

  /** Starts the heartbeat refresh and the sweep of expired relays, each every third of the time to live. */
  start(): void {
    const every = Math.max(100, Math.floor(this.#o.ttlMs / 3));
    const refresh = setInterval(() => {
      if (!this.#store.holdsMembers) return;
      this.#store.heartbeat();
      this.#schedule(0);
    }, every);
    // only a relay with sockets in presence needs dead relays gone; the read ignores expired ones meanwhile
    const sweep = setInterval(() => {
      if (!this.#closed && this.#tenants.size > 0) void this.#store.sweep();
    }, every);
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
        this.#store.touch(key);
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
      this.#store.touch(member.key);
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
    if (p === null || p.v !== 1 || (p.relay !== null && p.relay === this.#store.id)) return;
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
    await this.#store.end();
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
    if (this.#store.pending) return true;
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

  /** One write of the joins and leaves gathered (see {@link PresenceStore.write}); the tenants it changed are read again. */
  async #write(): Promise<void> {
    for (const t of await this.#store.write(this.#local)) {
      const view = this.#tenants.get(t);
      if (view) view.dirty = true;
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
    let fresh: Map<string, Map<string, PresenceMember>>;
    try {
      fresh = await this.#store.read(tenants);
    } catch (err) {
      for (const t of tenants) {
        const view = this.#tenants.get(t);
        if (view) view.dirty = true;
      }
      throw err;
    }
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
}
