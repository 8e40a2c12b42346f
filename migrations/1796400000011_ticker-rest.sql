-- Up Migration
-- The ticker rests when the database rests. While the log is quiet the ticker sleeps on LISTEN relay_wake instead of
-- looking at the database every few milliseconds; the first writer that finds it asleep wakes it with one NOTIFY,
-- sent when that writer commits. Under load the ticker says it is awake, and writers send nothing (a NOTIFY takes
-- Postgres's global notification lock at commit, which would make writers wait for each other).

-- Whether the ticker sleeps, as a lease: 0 means awake (it ticks on its own, writers send nothing); T > 0 means asleep
-- and listening until T (milliseconds since the epoch, server clock), so writers before T wake it. The ticker renews the
-- lease at every look while it sleeps; a ticker that dies lets it run out, and writers stop sending wake-ups a few
-- seconds later, instead of taking Postgres's notification lock at every commit for a listener that is gone (with no
-- relay running, writers cost what they did before pgrelay 0.3). A sequence because every session sees its value at
-- once, whatever its snapshot, and reading it takes no lock a writer could wait on; unlogged where Postgres allows it
-- (15+), so that setting it writes no WAL, and after a crash it starts at 0.
do $$
begin
  if current_setting('server_version_num')::integer >= 150000 then
    execute 'create unlogged sequence relay.ticker_asleep minvalue 0 start 0';
  else
    execute 'create sequence relay.ticker_asleep minvalue 0 start 0';
  end if;
end $$;

-- The ticker says whether it sleeps (and for how long it promises to listen). Before it sleeps it sets the lease here and
-- gets back this transaction's xid: a writer that read the flag before it was set had its xid already (it logs a row,
-- then looks), so it has a smaller one. The ticker then ticks once more and keeps looking (1, 2, 4 … ms apart) until no
-- transaction older than that xid is running: such a writer has committed by then, or rolled back.
create function relay.ticker_sleep(asleep boolean, lease_ms integer default 3000) returns xid8
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
begin
  perform setval('relay.ticker_asleep', case when asleep then (extract(epoch from clock_timestamp()) * 1000)::bigint + lease_ms else 0 end, true);
  return case when asleep then pg_current_xact_id() end;
end $$;
revoke all on function relay.ticker_sleep(boolean, integer) from public;
grant execute on function relay.ticker_sleep(boolean, integer) to relay_reader;

-- relay.capture and relay.tick are built from their previous versions, which this migration keeps, renamed, for its
-- own down migration: it takes the body each has (pg_proc.prosrc: the text between the $$ of 1796400000001 and
-- 1796400000003 as written there, the same in every database that ran them), edits it, and creates the new function
-- with the result, so that what did not change is written once. The new function is the same as one written out in
-- full, with no call or trigger added (the writer's and the tick's costs are those measured): \sf relay.capture and
-- \sf relay.tick show it whole. (No line of a comment here may start with the words down migration or up migration:
-- node-pg-migrate would take it for the start of that section.)
-- relay._edit (for this migration only): `src` with the text from `head` up to, not including, the next `upto` replaced
-- by `by`; with upto null, every `head` replaced by `by`. It raises when `head` or `upto` is missing, rather than create
-- another function than the one intended.
create function relay._edit(src text, head text, upto text, by text) returns text
language plpgsql immutable set search_path = pg_catalog, pg_temp as $$
declare
  i integer := strpos(src, head);
  j integer;
begin
  if i = 0 then
    raise exception 'pgrelay: migration 1796400000011 expected % in the function it edits', quote_literal(head);
  end if;
  if upto is null then
    return replace(src, head, by);
  end if;
  j := strpos(substr(src, i), upto);
  if j = 0 then
    raise exception 'pgrelay: migration 1796400000011 expected % after % in the function it edits', quote_literal(upto), quote_literal(head);
  end if;
  return substr(src, 1, i - 1) || by || substr(src, i + j - 1);
end $$;

-- relay.capture, as in 1796400000001, plus the wake-up: each statement that logs a change reads the flag, and if the
-- ticker is asleep queues NOTIFY relay_wake (Postgres keeps one of identical notifications per transaction). Awake, that
-- is one read of the sequence per statement (about 8,000 instructions). Marking the transaction so that later statements
-- skip the read (a transaction-local setting) measured more: 29,000 instructions for the mark alone, so a two-statement
-- transaction paid 42,000 for the check instead of 16,000 (bench/RESULTS.md, "where the writer's time goes").
-- Two-phase commit: a transaction that sent NOTIFY cannot be PREPAREd. So writers send wake-ups only where no
-- transaction can be prepared (max_prepared_transactions = 0, Postgres's default), unless relay.wake says otherwise:
-- `on` (e.g. ALTER DATABASE … SET relay.wake = on, when no writer of a watched table uses two-phase commit) or `off`
-- (e.g. ALTER ROLE xa_app SET relay.wake = off). Where writers do not wake it, the ticker does not sleep (db/ticker/rest-loop.ts
-- reads the same settings); a writer that sets `off` for itself is numbered by the ticker's next look (within 1 s).
-- The check is written into the body rather than called: a PL/pgSQL call, or a second trigger, costs every statement.
alter function relay.capture() rename to _capture_before_011;
do $do$
declare
  body text := (select prosrc from pg_proc where oid = 'relay._capture_before_011()'::regprocedure);
begin
  body := relay._edit(body, '  excl pg_catalog.text[];', null, $by$  excl pg_catalog.text[];
  wake pg_catalog.text;$by$);
  body := relay._edit(body, '  return null;', null, $by$  -- The wake-up check, after the transaction has an xid (it just logged a row): a writer that read the flag before the
  -- ticker set it is then either committed or in progress in the snapshot of the ticker's last tick before sleeping.
  -- Asleep: a lease that has not run out. Awake (0, the case under load), the clock is not read.
  if found and coalesce(pg_catalog.pg_sequence_last_value('relay.ticker_asleep'::pg_catalog.regclass), 0) operator(pg_catalog.>) 0 then
    if pg_catalog.pg_sequence_last_value('relay.ticker_asleep'::pg_catalog.regclass)
       operator(pg_catalog.>) (pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) operator(pg_catalog.*) 1000)::pg_catalog.int8 then
      wake := coalesce(pg_catalog.current_setting('relay.wake', true), '');
      if wake operator(pg_catalog.=) 'on' or (wake operator(pg_catalog.<>) 'off'
                                               and pg_catalog.current_setting('max_prepared_transactions') operator(pg_catalog.=) '0') then
        perform pg_catalog.pg_notify('relay_wake', '');
      end if;
    end if;
  end if;
  return null;$by$);
  execute format('create function relay.capture() returns trigger language plpgsql security definer as %L', body);
end $do$;
revoke all on function relay.capture() from public;

-- A leaner tick. Measured per tick that numbers one small transaction (bench/RESULTS.md, "Tick: what a tick costs
-- Postgres"), what costs is building each change's JSON in SQL (its key, the diff of an update's old row, the JSON
-- object), more than reading and writing rows. So the payload (version 2) carries each change's rows as relay.changes
-- renders them, with its key columns, and the relay derives `pk` and `old` (the diff) itself: Postgres is the one
-- shared resource, relays scale out. Who and why come from each transaction's last change (one join, not five ordered
-- aggregates); rows are rendered only for transactions whose changes travel inline; and the payloads come back to the
-- caller, so that the relay that ticks publishes them at once (other relays get them by NOTIFY). The previous version
-- is kept for the down migration; the rest of its body (reading the ticker's state, which transactions finished since
-- the last tick, relay.tenant_seqs, the NOTIFY payload's frame) stays as it was.
alter function relay.tick(pg_snapshot, integer) rename to _tick_before_011;
revoke all on function relay._tick_before_011(pg_snapshot, integer) from relay_reader;
do $do$
declare
  body text := (select prosrc from pg_proc where oid = 'relay._tick_before_011(pg_snapshot, integer)'::regprocedure);
begin
  -- the function's result has a column `payloads`, which a variable of that name would shadow
  body := relay._edit(body, '  payloads text[];', null, '  sent text[];');
  body := relay._edit(body, 'into n, last, payloads', null, 'into n, last, sent');
  -- the settings, in one look, and the lease
  body := relay._edit(body, '  -- For this transaction (a tick is one)', '  select * into st from relay.ticker;', $by$  -- see 1796400000003; and no nested loops: the generic plan cannot know a batch's size, and a nested loop between two
  -- of its steps made a tick of 20,000 transactions take minutes. The ticker's own session has them all already, so one
  -- look tells (each expression costs every tick: PL/pgSQL prepares its expressions once per transaction).
  if current_setting('enable_nestloop') <> 'off' then
    perform set_config('TimeZone', 'UTC', true), set_config('IntervalStyle', 'postgres', true), set_config('enable_seqscan', 'off', true),
            set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_nestloop', 'off', true);
  end if;
  -- a sleeping ticker renews its lease at every look (see relay.ticker_asleep)
  if lease_ms is not null then
    perform setval('relay.ticker_asleep', (extract(epoch from clock_timestamp()) * 1000)::bigint + lease_ms, true);
  end if;
$by$);
  -- the payloads come back to the caller (none when the tick numbered nothing)
  body := relay._edit(body, 'return query select st.last_seq, 0, cur;', null, 'return query select st.last_seq, 0, cur, null::text[];');
  -- the statement up to relay.tenant_seqs: the batch with each transaction's size and last change (pend), one row per
  -- transaction from its last change (txs), and each change with its raw rows (ch)
  body := relay._edit(body, '  -- One statement reads the batch', '  ), tenant_rows as (', $by$  with pend as materialized (
    -- rows of transactions still running are invisible here, so only committed changes come back
    select u.*, max(u.id) over w as last_id, count(*) over w as n
    from (select l.id, l.txid, l.relid, l.op, l.row, l.old_row, l.db_user, l.application_name, l.client_addr, l.actor, l.origin
          from relay.log l where l.txid >= pg_snapshot_xmax(prev) and l.txid < pg_snapshot_xmax(cur)
          union all
          select l.id, l.txid, l.relid, l.op, l.row, l.old_row, l.db_user, l.application_name, l.client_addr, l.actor, l.origin
          from relay.log l where l.txid = any (done)) u
    window w as (partition by u.txid)
  ), txs as materialized (
    -- one row per transaction, its last change: who and why as its last statement saw them
    select st.last_seq + row_number() over (order by p.id) as seq, p.txid, p.n::integer as n, p.db_user,
           nullif(p.application_name, '') as application_name, p.client_addr, nullif(p.actor, '') as actor, nullif(p.origin, '') as origin,
           case when commit_ts then coalesce(pg_xact_commit_timestamp((p.txid::text::numeric % 4294967296)::text::xid), at) else at end as committed_at
    from pend p where p.id = p.last_id
  ), tx_rows as (
    insert into relay.transactions (seq, txid, committed_at, db_user, application_name, client_addr, actor, origin, change_count)
    select t.seq, t.txid, t.committed_at, t.db_user, t.application_name, t.client_addr, t.actor, t.origin, t.n from txs t
  ), ch as materialized (
    select t.seq, t.n, p.id, p.op, p.relid, p.row, p.old_row, w.key_columns, w.schema_name || '.' || w.table_name as tbl,
           w.tenant_column is not null as has_tenant,
           case when p.op <> 'truncate' then p.row ->> w.tenant_column end as tenant,
           case when p.op = 'update' and (p.old_row ->> w.tenant_column) is distinct from (p.row ->> w.tenant_column)
                then p.old_row ->> w.tenant_column end as old_tenant
    from pend p join txs t using (txid) join relay.watches w on w.relid = p.relid
$by$);
  -- the changes of transactions that travel inline, rendered
  body := relay._edit(body, '    select c.seq, string_agg(json_build_object(', '    group by c.seq', $by$    -- each change with its rows as relay.changes renders them (the old row whole: the relay derives the diff)
    select c.seq, string_agg('{"id":' || c.id || ',"tenant":' || coalesce(to_json(c.tenant)::text, 'null') || ',"table":' || to_json(c.tbl)::text ||
                             ',"op":"' || c.op || '","key":' || to_json(c.key_columns)::text ||
                             ',"row":' || coalesce(relay._render(c.relid, c.row)::text, 'null') ||
                             ',"old_row":' || coalesce(relay._render(c.relid, c.old_row)::text, 'null') ||
                             ',"old_tenant":' || coalesce(to_json(c.old_tenant)::text, 'null') || '}', ',' order by c.id) as changes
    from ch c
    where c.n <= 32
$by$);
  -- the payloads: version 2, one per row of txs t (1796400000003's numbered nb is gone)
  body := relay._edit(body, '"v":1', null, '"v":2');
  body := relay._edit(body, 'from numbered nb', null, 'from txs t');
  body := relay._edit(body, 'nb.', null, 't.');
  -- the payloads sent are those returned
  body := relay._edit(body, '    payload := payloads[n];', '  return query select last, n, cur;', $by$    -- the last transaction's own payload, as a reference
    sent := array[regexp_replace(sent[n], ',"origin":.*$', '}')];
  end if;
  foreach payload in array sent loop
    perform pg_notify('relay', payload);
  end loop;
$by$);
  body := relay._edit(body, 'return query select last, n, cur;', null, 'return query select last, n, cur, sent;');
  execute format($create$create function relay.tick(known pg_snapshot default null, max_inline integer default 200, lease_ms integer default null)
    returns table (last_seq bigint, sequenced integer, snap pg_snapshot, payloads text[])
    language plpgsql security definer set search_path = pg_catalog, pg_temp as %L$create$, body);
end $do$;
revoke all on function relay.tick(pg_snapshot, integer, integer) from public;
grant execute on function relay.tick(pg_snapshot, integer, integer) to relay_reader;

drop function relay._edit(text, text, text, text);

-- Point every capture trigger at the new function (relay._install recreates them by name).
select relay._install(relid) from relay.watches where active;

-- Down Migration
drop function relay.tick(pg_snapshot, integer, integer);
alter function relay._tick_before_011(pg_snapshot, integer) rename to tick;
grant execute on function relay.tick(pg_snapshot, integer) to relay_reader;
drop function relay.capture() cascade;
alter function relay._capture_before_011() rename to capture;
select relay._install(relid) from relay.watches where active;
drop function relay.ticker_sleep(boolean, integer);
drop sequence relay.ticker_asleep;
