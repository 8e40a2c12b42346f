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

-- One tick. `known`: a snapshot at which everything visible was already numbered (the caller's last empty tick), so
-- that transactions that finished without touching the log are not looked at again. Returns the last seq, how many
-- transactions this tick numbered, and its snapshot (the caller's next `known`). Writes nothing when there is
-- nothing to number.
create function relay.tick(known pg_snapshot default null, max_inline integer default 200)
returns table (last_seq bigint, sequenced integer, snap pg_snapshot)
language plpgsql security definer
set search_path = pg_catalog, pg_temp
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
  payload text;
  payloads text[];
begin
  if current_setting('transaction_isolation') not in ('repeatable read', 'serializable') then
    raise exception 'pgrelay: relay.tick() must run in a REPEATABLE READ transaction, so that the changes it reads and the snapshot it records agree'
      using errcode = 'PR012';
  end if;
  -- For this transaction (a tick is one): payloads render timestamps in UTC and intervals in postgres style; the batch
  -- read uses log_txid even before the first ANALYZE of a fresh log (seq scans priced out), so no plan is JIT-compiled
  -- (≈ 100 ms a tick); the same statements every tick are planned once. Set only when different: the ticker's own
  -- session already has them (db/ticker.ts), and a SET clause would cost every tick a configuration swap.
  if current_setting('TimeZone') <> 'UTC' then perform set_config('TimeZone', 'UTC', true); end if;
  if current_setting('IntervalStyle') <> 'postgres' then perform set_config('IntervalStyle', 'postgres', true); end if;
  if current_setting('enable_seqscan') <> 'off' then perform set_config('enable_seqscan', 'off', true); end if;
  if current_setting('jit') <> 'off' then perform set_config('jit', 'off', true); end if;
  if current_setting('plan_cache_mode') <> 'force_generic_plan' then perform set_config('plan_cache_mode', 'force_generic_plan', true); end if;
  select * into st from relay.ticker;
  prev := st.snap;
  -- known covers prev when every transaction finished at prev is finished at known
  if known is not null and pg_snapshot_xmax(known) >= pg_snapshot_xmax(prev)
     and not exists (select 1 from pg_snapshot_xip(known) x where pg_visible_in_snapshot(x, prev)) then
    prev := known;
  end if;
  -- transactions in progress at prev that have finished since
  done := array(select x from pg_snapshot_xip(prev) x where pg_visible_in_snapshot(x, cur));
  if pg_snapshot_xmax(cur) = pg_snapshot_xmax(prev) and cardinality(done) = 0 then
    return query select st.last_seq, 0, cur;
    return;
  end if;

  -- One statement reads the batch, numbers it, writes it and renders its NOTIFY payloads: statements and their
  -- executor start-up are what a tick costs, more than the rows.
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
    select st.last_seq + row_number() over (order by x.last_id) as seq,
           case when commit_ts then coalesce(pg_xact_commit_timestamp((x.txid::text::numeric % 4294967296)::text::xid), at) else at end as committed_at,
           x.* from txs x
  ), tx_rows as (
    insert into relay.transactions (seq, txid, committed_at, db_user, application_name, client_addr, actor, origin, change_count)
    select nb.seq, nb.txid, nb.committed_at, nb.db_user, nb.application_name, nb.client_addr, nb.actor, nb.origin, nb.n
    from numbered nb
  ), ch as materialized (
    -- each change as relay.changes renders it, with its transaction's seq
    select nb.seq, p.id, p.op, w.schema_name || '.' || w.table_name as tbl, w.tenant_column is not null as has_tenant,
           case when p.op <> 'truncate' then p.row ->> w.tenant_column end as tenant,
           case when p.op = 'update' and (p.old_row ->> w.tenant_column) is distinct from (p.row ->> w.tenant_column)
                then p.old_row ->> w.tenant_column end as old_tenant,
           case when p.op <> 'truncate' then (select jsonb_object_agg(k, r.row -> k) from unnest(w.key_columns) k) end as pk,
           r.row,
           case when p.op = 'update' then (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(r.old_row) e
                                           where r.row -> e.key is distinct from e.value) end as old
    from pend p
    join numbered nb on nb.txid = p.txid
    join relay.watches w on w.relid = p.relid
    cross join lateral (select relay._render(p.relid, p.row) as row, relay._render(p.relid, p.old_row) as old_row offset 0) r
  ), tenant_rows as (
    insert into relay.tenant_seqs (tenant, seq)
    select distinct x.tenant, c.seq
    from ch c cross join lateral (values (c.tenant), (c.old_tenant)) x(tenant)
    where c.has_tenant and (x.tenant is not null or c.op = 'truncate')
  ), inline as (
    select c.seq, string_agg(json_build_object('id', c.id, 'tenant', c.tenant, 'table', c.tbl, 'op', c.op, 'pk', c.pk,
                                               'row', c.row, 'old', c.old, 'old_tenant', c.old_tenant)::text, ',' order by c.id) as changes
    from ch c join numbered nb on nb.seq = c.seq
    where nb.n <= 32
    group by c.seq
  )
  -- NOTIFY relay, versioned: a small transaction travels inline (under 8000 bytes with room to spare), a big one as
  -- a reference; a batch of more than max_inline transactions as one reference to its last seq (the relay reads the
  -- gap from the log)
  select count(*)::integer, max(nb.seq),
         array_agg('{"v":1,"seq":' || nb.seq || ',"at":' || to_json(nb.committed_at)::text || ',"n":' || nb.n ||
                   case when i.changes is not null and octet_length(i.changes) + octet_length(coalesce(nb.origin, '')) <= 7300
                        then ',"origin":' || coalesce(to_json(nb.origin)::text, 'null') || ',"changes":[' || i.changes || ']}'
                        else '}' end order by nb.seq)
    into n, last, payloads
  from numbered nb left join inline i on i.seq = nb.seq;

  if n = 0 then
    -- only transactions that never touched the log finished
    return query select st.last_seq, 0, cur;
    return;
  end if;
  update relay.ticker set last_seq = last, snap = cur, ticked_at = at;
  if n > max_inline then
    payload := payloads[n];
    -- the last transaction's own payload, as a reference
    perform pg_notify('relay', regexp_replace(payload, ',"origin":.*$', '}'));
  else
    foreach payload in array payloads loop
      perform pg_notify('relay', payload);
    end loop;
  end if;
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
drop table if exists relay.tenant_seqs;
drop table if exists relay.transactions;
drop table if exists relay.state;
drop table if exists relay.ticker;
