// This relay's rows of relay.presence (migration 010): its joins and leaves written in one statement, members read per tenant.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { PresenceMember } from '../../client/shared/protocol.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';

/** What {@link PresenceStore} needs from the relay. */
export interface PresenceStoreOptions {
  /** Queries run one at a time: presence takes at most one connection of the pool. */
  pool: Pick<pg.Pool, 'query'>;
  log: Logger;
  metrics: Metrics;
  /** `RELAY_PRESENCE_TTL_MS`: how long this relay's entries live without a refresh; it refreshes every third of it. */
  ttlMs: number;
}

/** A member present through sockets of this relay, as the store writes it. */
export interface PresentMember {
  readonly tenant: string;
  readonly sub: string;
  readonly name: string | null;
}

/**
 * What relay.presence holds for this relay, and the statements that change and read it: relay.presence_sync (one
 * statement and one NOTIFY relay_presence for every join and leave gathered, and the heartbeat), relay.presence_members,
 * relay.presence_sweep and relay.presence_end. Members are keyed by JSON [tenant, sub].
 */
export class PresenceStore {
  /** This relay instance's id in relay.presence (a new one per process: a restarted relay never revives a dead one's rows). */
  readonly id = randomUUID();
  readonly #o: PresenceStoreOptions;
  /** What relay.presence holds for this relay, as far as this relay has written it. */
  readonly #written = new Map<string, { t: string; s: string }>();
  /** Keys whose database state may differ from the members present here. */
  readonly #touched = new Set<string>();
  /** Rewrite every member of this relay (its heartbeat expired and a sweep removed them). */
  #replace = false;
  #heartbeat = false;

  constructor(options: PresenceStoreOptions) {
    this.#o = options;
  }

  /** Whether relay.presence holds members of this relay, as far as it has written them. */
  get holdsMembers(): boolean {
    return this.#written.size > 0;
  }

  /** Whether the next {@link write} has something to send. */
  get pending(): boolean {
    return this.#touched.size > 0 || this.#replace || this.#heartbeat;
  }

  /** The member with this key joined or left here: the next write brings the database up to date. */
  touch(key: string): void {
    this.#touched.add(key);
  }

  /** The next write refreshes this relay's entries even when no member joined or left. */
  heartbeat(): void {
    this.#heartbeat = true;
  }

  /**
   * One relay.presence_sync for every join and leave gathered since the last one (and the heartbeat), given the members
   * present here by key; returns the tenants of the members it wrote or removed. A failed write is tried again in full.
   */
  async write(local: ReadonlyMap<string, PresentMember>): Promise<string[]> {
    const replace = this.#replace;
    const joins: Array<{ t: string; s: string; n: string | null }> = [];
    const leaves: Array<{ t: string; s: string }> = [];
    if (replace) {
      for (const m of local.values()) joins.push({ t: m.tenant, s: m.sub, n: m.name });
    } else {
      for (const key of this.#touched) {
        const m = local.get(key);
        const written = this.#written.get(key);
        if (m && !written) joins.push({ t: m.tenant, s: m.sub, n: m.name });
        else if (!m && written) leaves.push(written);
      }
    }
    const touched = [...this.#touched];
    const heartbeat = this.#heartbeat;
    this.#touched.clear();
    if (joins.length === 0 && leaves.length === 0 && !replace && !heartbeat) return [];
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
    if (!known && !replace && before > 0) {
      // a sweep removed this relay's members while it was not refreshing (a long pause, or the database out of reach)
      this.#o.log.warn({ members: local.size }, 'presence: entries of this relay had expired; writing them again');
      this.#replace = true;
    }
    return [...joins, ...leaves].map((x) => x.t);
  }

  /** One relay.presence_members for these tenants: each tenant's members by sub (every tenant asked for has a list). */
  async read(tenants: readonly string[]): Promise<Map<string, Map<string, PresenceMember>>> {
    let rows: Array<{ tenant: string; sub: string; name: string | null }>;
    try {
      rows = (await this.#o.pool.query<{ tenant: string; sub: string; name: string | null }>('select tenant, sub, name from relay.presence_members($1)', [tenants])).rows;
    } finally {
      this.#o.metrics.presenceStatements.inc({ kind: 'read' });
    }
    const fresh = new Map(tenants.map((t) => [t, new Map<string, PresenceMember>()]));
    for (const r of rows) fresh.get(r.tenant)?.set(r.sub, { sub: r.sub, name: r.name });
    return fresh;
  }

  /** Removes the entries of relays whose heartbeat expired; a failure waits for the next sweep. */
  async sweep(): Promise<void> {
    try {
      await this.#o.pool.query('select relay.presence_sweep()');
    } catch (err) {
      this.#o.log.debug({ err }, 'presence: the sweep of expired relays failed; the next one tries again');
    } finally {
      this.#o.metrics.presenceStatements.inc({ kind: 'sweep' });
    }
  }

  /** Removes this relay's members at once (instead of at expiry), if it wrote any. */
  async end(): Promise<void> {
    if (this.#written.size === 0) return;
    try {
      await this.#o.pool.query('select relay.presence_end($1)', [this.id]);
    } catch (err) {
      this.#o.log.warn({ err }, `presence: could not remove this relay's members; they leave when its entries expire`);
    }
  }
}
