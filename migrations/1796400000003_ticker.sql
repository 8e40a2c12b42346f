-- Up Migration
-- Order: the ticker (one session per database, in the leader relay) numbers committed transactions in batches, as
-- PgQ's ticker does. Each tick, in one REPEATABLE READ transaction, reads the log rows of the transactions that
-- finished since the last tick, orders those transactions by their highest change id, gives each the next seq,
-- records them with the tick's snapshot, and sends NOTIFY relay. Writers never wait for any of it.
--
-- Why this order is right: a transaction visible at a tick committed before every transaction that was not, so
-- batches follow commit order. Inside a batch, if B depends on A (B waited for A's row lock, or read A's write),
-- B's dependent change was written after A committed, so after all of A's changes: B's highest id is above A's.

-- The ticker's state (one row).
create table relay.ticker (
  singleton boolean primary key default true check (singleton),
  -- the highest seq given out
  last_seq bigint not null default 0,
  -- the snapshot of the last tick that numbered anything: a change visible in it has a seq, any other has not
  snap pg_snapshot not null,
  ticked_at timestamptz
);
insert into relay.ticker (snap) values (pg_current_snapshot());

-- History older than pruned_through is gone (see relay.prune): older cursors must reset. One row.
create table relay.state (
  singleton boolean primary key default true check (singleton),
  pruned_through bigint not null default 0
);
insert into relay.state default values;

-- One row per committed transaction that changed a watched table, numbered by the ticker.
create table relay.transactions (
  seq bigint primary key,
  txid xid8 not null,
  -- the commit time with track_commit_timestamp = on; otherwise the time of the tick that first saw the commit
  committed_at timestamptz not null,
  db_user text not null,
  application_name text,
  client_addr inet,
  actor text,
  origin text,
  change_count integer not null
);
create unique index transactions_txid on relay.transactions (txid);

-- Which transactions a tenant's subscribers receive, so that catching one tenant up reads only its transactions.
-- Written by the ticker. A null tenant is a truncate, which every tenant of the table receives.
create table relay.tenant_seqs (
  tenant text,
  seq bigint not null
);
create index tenant_seqs_tenant on relay.tenant_seqs (tenant, seq);

-- Every transaction completed in snapshot b is completed in snapshot a.
create function relay._covers(a pg_snapshot, b pg_snapshot) returns boolean
language sql immutable parallel safe as $$
  select pg_snapshot_xmax(a) >= pg_snapshot_xmax(b)
     and not exists (select 1 from pg_snapshot_xip(a) x where pg_visible_in_snapshot(x, b))
$$;

-- One tick. `known`: a snapshot at which everything visible was already numbered (the caller's last empty tick), so
-- that transactions that finished without touching the log are not looked at again. Returns the last seq, how many
-- transactions this tick numbered, and its snapshot (the caller's next `known`). Writes nothing when there is
-- nothing to number.
create function relay.tick(known pg_snapshot default null, max_inline integer default 200)
returns table (last_seq bigint, sequenced integer, snap pg_snapshot)
language plpgsql security definer
set search_path = pg_catalog, pg_temp
set "TimeZone" = 'UTC'
set "IntervalStyle" = 'postgres'
-- the batch read must use log_txid even before the first ANALYZE of a fresh log
set enable_seqscan = off
as $$
declare
  st relay.ticker;
  cur pg_snapshot := pg_current_snapshot();
  prev pg_snapshot;
  done xid8[];
  at timestamptz := clock_timestamp();
  commit_ts boolean := current_setting('track_commit_timestamp') = 'on';
  n integer;
  last bigint;
  t record;
  payload text;
begin
  if current_setting('transaction_isolation') not in ('repeatable read', 'serializable') then
    raise exception 'pgrelay: relay.tick() must run in a REPEATABLE READ transaction, so that the changes it reads and the snapshot it records agree'
      using errcode = 'PR012';
  end if;
  select * into st from relay.ticker;
  prev := st.snap;
  if known is not null and relay._covers(known, prev) then
    prev := known;
  end if;
  -- transactions in progress at prev that have finished since
  done := array(select x from pg_snapshot_xip(prev) x where pg_visible_in_snapshot(x, cur));
  if pg_snapshot_xmax(cur) = pg_snapshot_xmax(prev) and cardinality(done) = 0 then
    return query select st.last_seq, 0, cur;
    return;
  end if;

  with pend as materialized (
    -- rows of transactions still running are invisible here, so only committed changes come back
    select l.id, l.txid, l.relid, l.op, l.row, l.old_row, l.db_user, l.application_name, l.client_addr, l.actor, l.origin
    from relay.log l where l.txid >= pg_snapshot_xmax(prev) and l.txid < pg_snapshot_xmax(cur)
    union all
    select l.id, l.txid, l.relid, l.op, l.row, l.old_row, l.db_user, l.application_name, l.client_addr, l.actor, l.origin
    from relay.log l where l.txid = any (done)
  ), txs as materialized (
    -- who and why: as the transaction's last statement saw them
    select p.txid, max(p.id) as last_id, count(*)::integer as n,
           (array_agg(p.db_user order by p.id desc))[1] as db_user,
           nullif((array_agg(p.application_name order by p.id desc))[1], '') as application_name,
           (array_agg(p.client_addr order by p.id desc))[1] as client_addr,
           nullif((array_agg(p.actor order by p.id desc))[1], '') as actor,
           nullif((array_agg(p.origin order by p.id desc))[1], '') as origin
    from pend p group by p.txid
  ), numbered as materialized (
    select st.last_seq + row_number() over (order by x.last_id) as seq, x.* from txs x
  ), tx_rows as (
    insert into relay.transactions (seq, txid, committed_at, db_user, application_name, client_addr, actor, origin, change_count)
    select nb.seq, nb.txid,
           case when commit_ts then coalesce(pg_xact_commit_timestamp((nb.txid::text::numeric % 4294967296)::text::xid), at) else at end,
           nb.db_user, nb.application_name, nb.client_addr, nb.actor, nb.origin, nb.n
    from numbered nb
  ), tenant_rows as (
    insert into relay.tenant_seqs (tenant, seq)
    select distinct x.tenant, nb.seq
    from pend p
    join numbered nb on nb.txid = p.txid
    join relay.watches w on w.relid = p.relid
    cross join lateral (values (case when p.op <> 'truncate' then p.row ->> w.tenant_column end), (p.old_row ->> w.tenant_column)) x(tenant)
    where w.tenant_column is not null and (x.tenant is not null or p.op = 'truncate')
  )
  select count(*)::integer, max(nb.seq) into n, last from numbered nb;

  if n = 0 then
    -- only transactions that never touched the log finished
    return query select st.last_seq, 0, cur;
    return;
  end if;
  update relay.ticker set last_seq = last, snap = cur, ticked_at = at;

  -- NOTIFY relay, versioned: a small transaction travels inline (under 8000 bytes with room to spare), a big one as
  -- a reference; a big batch as one reference to its last seq (the relay reads the gap from the log).
  for t in
    select x.seq, x.committed_at, x.origin, x.change_count,
           case when n <= max_inline and x.change_count <= 32 then
             (select string_agg(json_build_object('id', c.id, 'tenant', c.tenant, 'table', c.schema_name || '.' || c.table_name,
                                                  'op', c.op, 'pk', c.pk, 'row', c.row, 'old', c.old, 'old_tenant', c.old_tenant)::text, ',' order by c.id)
              from relay.changes c where c.txid = x.txid)
           end as inline
    from relay.transactions x
    where x.seq > (case when n <= max_inline then st.last_seq else last - 1 end) and x.seq <= last
    order by x.seq
  loop
    payload := '{"v":1,"seq":' || t.seq || ',"at":' || to_json(t.committed_at)::text || ',"n":' || t.change_count;
    if t.inline is not null and octet_length(t.inline) + octet_length(coalesce(t.origin, '')) <= 7300 then
      payload := payload || ',"origin":' || coalesce(to_json(t.origin)::text, 'null') || ',"changes":[' || t.inline || ']}';
    else
      payload := payload || '}';
    end if;
    perform pg_notify('relay', payload);
  end loop;
  return query select last, n, cur;
end $$;

-- The position visible to the current snapshot: every transaction with seq <= it is numbered and visible, none
-- above it is. (A change committed after the last tick can already be visible in a table: relay.snapshot accounts
-- for it; a caller reading tables itself gets at most one tick's worth of such changes again in the stream.)
create function relay.position() returns bigint
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select greatest((select last_seq from relay.ticker), (select pruned_through from relay.state))
$$;

-- Down Migration
drop function if exists relay.position();
drop function if exists relay.tick(pg_snapshot, integer);
drop function if exists relay._covers(pg_snapshot, pg_snapshot);
drop table if exists relay.tenant_seqs;
drop table if exists relay.transactions;
drop table if exists relay.state;
drop table if exists relay.ticker;
