-- Up Migration
-- pgrelay capture: the commit-ordered change log, watch/unwatch, snapshot, audit and prune.
--
-- SQLSTATEs raised here (also listed in db/sqlstate.ts):
--   PR001 table has no primary key            PR005 relay's own tables cannot be watched
--   PR002 tenant column does not exist        PR006 change after this transaction was sequenced
--   PR003 excluded column does not exist      PR007 not a plain or partitioned table
--   PR004 primary-key/tenant column excluded  PR008 bad snapshot filter
--   PR009 table is not watched                PR010 a schema or table name with a dot

create schema if not exists relay;

-- Settings the SQL side reads; one row.
create table relay.state (
  singleton boolean primary key default true check (singleton),
  -- every transaction with seq <= pruned_through is gone from the log: older cursors must reset
  pruned_through bigint not null default 0
);
insert into relay.state default values;

create sequence relay.commit_seq as bigint;

-- One row per committed transaction that changed a watched table, numbered in commit order.
create table relay.transactions (
  seq bigint primary key,
  txid xid8 not null,
  committed_at timestamptz not null,
  db_user text not null,
  application_name text,
  client_addr inet,
  actor text,
  origin text,
  change_count integer not null,
  -- oldest transaction still running when this one took its seq: every later seq has txid >= it,
  -- which bounds catch-up scans of relay.changes by txid
  running_xmin xid8 not null
);
create unique index transactions_txid on relay.transactions (txid);

-- One row per changed row, written by the capture triggers in the writer's transaction.
create table relay.changes (
  txid xid8 not null,
  id integer not null, -- order inside the transaction, from 1
  tenant text,
  schema_name text not null,
  table_name text not null,
  op text not null check (op in ('insert', 'update', 'delete', 'truncate')),
  pk jsonb,
  row jsonb,
  old jsonb,
  -- an UPDATE that moved the row to another tenant: the tenant it left (it sees a delete, the new one an insert)
  old_tenant text,
  primary key (txid, id)
);
-- catch-up for one tenant reads only that tenant's changes (truncates have tenant null)
create index changes_tenant on relay.changes (tenant, txid);
create index changes_old_tenant on relay.changes (old_tenant, txid) where old_tenant is not null;

-- What is captured, by attribute number so that renames keep their meaning.
create table relay.watches (
  relid oid primary key,
  tenant_attnum smallint,
  exclude_attnums smallint[] not null default '{}',
  watched_at timestamptz not null default now()
);

-- Capture configuration as names, computed from the catalog: what the triggers receive as arguments.
create function relay._watch_args(p_relid oid, out tenant_column text, out pk_columns text[], out exclude_columns text[], out numeric_columns text[])
language sql stable set search_path = pg_catalog, pg_temp as $$
  select
    (select a.attname::text from pg_attribute a where a.attrelid = w.relid and a.attnum = w.tenant_attnum and not a.attisdropped),
    (select array_agg(a.attname::text order by k.ord) from pg_index i
       cross join lateral unnest(i.indkey) with ordinality k(attnum, ord)
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
       where i.indrelid = w.relid and i.indisprimary),
    coalesce((select array_agg(a.attname::text order by a.attnum) from pg_attribute a
       where a.attrelid = w.relid and a.attnum = any (w.exclude_attnums) and not a.attisdropped), '{}'),
    -- int8 and numeric (domains over them, arrays of them) travel as JSON strings so their type never depends on their value
    coalesce((select array_agg(a.attname::text order by a.attnum) from pg_attribute a
       join pg_type t on t.oid = a.atttypid
       where a.attrelid = w.relid and a.attnum > 0 and not a.attisdropped
         and not (a.attnum = any (w.exclude_attnums))
         and (select coalesce(nullif(e.typelem, 0), e.oid) from pg_type e
              where e.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end) in ('int8'::regtype, 'numeric'::regtype)), '{}')
  from relay.watches w where w.relid = p_relid
$$;

-- The JSON form of a row: excluded columns removed, int8/numeric values as strings.
create function relay._row_json(r jsonb, exclude_columns text[], numeric_columns text[]) returns jsonb
language plpgsql immutable as $$
declare
  k text;
  v jsonb;
begin
  -- No SET search_path here (it would cost a GUC swap per row): only pgrelay's SECURITY DEFINER functions,
  -- whose search_path is pinned, may call it.
  if exclude_columns <> '{}' then r := r - exclude_columns; end if;
  foreach k in array numeric_columns loop
    v := r -> k;
    if jsonb_typeof(v) = 'number' then
      r := jsonb_set(r, array[k], to_jsonb(v #>> '{}'));
    elsif jsonb_typeof(v) = 'array' then
      -- an int8[] / numeric[] holds only numbers, nulls and brackets: quote every number
      r := jsonb_set(r, array[k], regexp_replace(v::text, '(-?[0-9][0-9.eE+-]*|NaN|-?Infinity)', '"\1"', 'g')::jsonb);
    end if;
  end loop;
  return r;
end $$;

-- Statement-level capture: one INSERT ... SELECT per statement, whatever its row count. Arguments:
-- tenant column ('' = none), primary key columns, excluded columns, int8/numeric columns (array literals).
-- Transition tables pair old and new rows by position: Postgres appends both for each updated row.
-- Nothing here builds the NOTIFY payload: the sequencer reads it back once per transaction, if small.
create function relay.capture() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
set "TimeZone" = 'UTC'
set "IntervalStyle" = 'postgres'
set extra_float_digits = 1
as $$
declare
  n integer := coalesce(nullif(current_setting('relay._n', true), ''), '0')::integer;
  tenant_col text := nullif(tg_argv[0], '');
  pk_cols text[] := tg_argv[1]::text[];
  excl text[] := tg_argv[2]::text[];
  nums text[] := tg_argv[3]::text[];
  plain boolean := tg_argv[2] = '{}' and tg_argv[3] = '{}';
  added integer;
begin
  -- One query shape per case, so that the plan carries no subplan it does not need (most keys are one column).
  if tg_op = 'TRUNCATE' then
    insert into relay.changes (txid, id, tenant, schema_name, table_name, op)
    values (pg_current_xact_id(), n + 1, null, tg_table_schema, tg_table_name, 'truncate');
    added := 1;
  elsif tg_op = 'UPDATE' then
    if cardinality(pk_cols) = 1 then
      insert into relay.changes (txid, id, tenant, schema_name, table_name, op, pk, row, old, old_tenant)
      select pg_current_xact_id(), n + nw.i, nw.r ->> tenant_col, tg_table_schema, tg_table_name, 'update',
             jsonb_build_object(pk_cols[1], nw.r -> pk_cols[1]), nw.r,
             (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(od.r) e where nw.r -> e.key is distinct from e.value),
             nullif(od.r ->> tenant_col, nw.r ->> tenant_col)
      from (select case when plain then to_jsonb(t) else relay._row_json(to_jsonb(t), excl, nums) end as r, row_number() over () as i from relay_new t) nw
      join (select case when plain then to_jsonb(t) else relay._row_json(to_jsonb(t), excl, nums) end as r, row_number() over () as i from relay_old t) od using (i);
    else
      insert into relay.changes (txid, id, tenant, schema_name, table_name, op, pk, row, old, old_tenant)
      select pg_current_xact_id(), n + nw.i, nw.r ->> tenant_col, tg_table_schema, tg_table_name, 'update',
             (select jsonb_object_agg(k, nw.r -> k) from unnest(pk_cols) k), nw.r,
             (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(od.r) e where nw.r -> e.key is distinct from e.value),
             nullif(od.r ->> tenant_col, nw.r ->> tenant_col)
      from (select case when plain then to_jsonb(t) else relay._row_json(to_jsonb(t), excl, nums) end as r, row_number() over () as i from relay_new t) nw
      join (select case when plain then to_jsonb(t) else relay._row_json(to_jsonb(t), excl, nums) end as r, row_number() over () as i from relay_old t) od using (i);
    end if;
    get diagnostics added = row_count;
  elsif cardinality(pk_cols) = 1 then
    insert into relay.changes (txid, id, tenant, schema_name, table_name, op, pk, row)
    select pg_current_xact_id(), n + s.i, s.r ->> tenant_col, tg_table_schema, tg_table_name, lower(tg_op),
           jsonb_build_object(pk_cols[1], s.r -> pk_cols[1]), s.r
    from (select case when plain then to_jsonb(t) else relay._row_json(to_jsonb(t), excl, nums) end as r, row_number() over () as i from relay_rows t) s;
    get diagnostics added = row_count;
  else
    insert into relay.changes (txid, id, tenant, schema_name, table_name, op, pk, row)
    select pg_current_xact_id(), n + s.i, s.r ->> tenant_col, tg_table_schema, tg_table_name, lower(tg_op),
           (select jsonb_object_agg(k, s.r -> k) from unnest(pk_cols) k), s.r
    from (select case when plain then to_jsonb(t) else relay._row_json(to_jsonb(t), excl, nums) end as r, row_number() over () as i from relay_rows t) s;
    get diagnostics added = row_count;
  end if;
  if added > 0 then
    if nullif(current_setting('relay._seq', true), '') is not null then
      raise exception 'pgrelay: this transaction already took its commit position, so its later changes to %.% cannot be streamed', tg_table_schema, tg_table_name
        using errcode = 'PR006',
              hint = 'SET CONSTRAINTS ALL IMMEDIATE fired pgrelay''s commit trigger early: name the constraints to check instead of ALL, or make the change before it.';
    end if;
    perform set_config('relay._n', (n + added)::text, true);
  end if;
  return null;
end $$;

-- The sequencer: once per transaction, at commit (a deferred constraint trigger on the transaction's first
-- change). The advisory lock is held until the commit completes, so seq order is commit order; everything
-- that can run before the lock (reading back a small transaction's changes for the payload) does.
create function relay.sequence() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
set "TimeZone" = 'UTC'
as $$
declare
  s bigint;
  at timestamptz;
  x xid8 := pg_current_xact_id();
  n integer := coalesce(nullif(current_setting('relay._n', true), ''), '0')::integer;
  origin text := nullif(current_setting('relay.origin', true), '');
  actor text := nullif(current_setting('relay.actor', true), '');
  inline text;
  payload text;
  hold text := coalesce(nullif(current_setting('relay.sequenced_timeout', true), ''), '10s');
begin
  -- A small transaction travels inside the NOTIFY (under 8000 bytes with room to spare); a big one as a reference.
  if n <= 32 then
    select string_agg(json_build_object('id', c.id, 'tenant', c.tenant, 'table', c.schema_name || '.' || c.table_name,
                                        'op', c.op, 'pk', c.pk, 'row', c.row, 'old', c.old, 'old_tenant', c.old_tenant)::text, ',' order by c.id)
      into inline from relay.changes c where c.txid = x;
    if octet_length(inline) + octet_length(coalesce(origin, '')) > 7300 then inline := null; end if;
  end if;
  perform pg_advisory_xact_lock(7242, 1);
  s := nextval('relay.commit_seq');
  at := clock_timestamp();
  insert into relay.transactions (seq, txid, committed_at, db_user, application_name, client_addr, actor, origin, change_count, running_xmin)
  values (s, x, at, session_user, nullif(current_setting('application_name'), ''), inet_client_addr(),
          actor, origin, n, pg_snapshot_xmin(pg_current_snapshot()));
  payload := '{"v":1,"seq":' || s || ',"at":' || to_json(at)::text || ',"n":' || n;
  if inline is not null then
    payload := payload || ',"origin":' || coalesce(to_json(origin)::text, 'null') || ',"changes":[' || inline || ']}';
  else
    payload := payload || '}';
  end if;
  perform pg_notify('relay', payload);
  -- Normally this fires inside COMMIT and the settings below die with the transaction. When
  -- SET CONSTRAINTS ALL IMMEDIATE fires it early, the lock is held until COMMIT: bound that time.
  perform set_config('relay._seq', s::text, true);
  perform set_config('statement_timeout', hold, true);
  perform set_config('idle_in_transaction_session_timeout', hold, true);
  return null;
end $$;

create constraint trigger sequence_commit after insert on relay.changes
  deferrable initially deferred for each row when (new.id = 1)
  execute function relay.sequence();
alter table relay.changes enable always trigger sequence_commit;

-- (Re)creates the capture triggers of one watched table from relay.watches.
create function relay._install(p_relid oid) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  a record;
  t record;
  args text;
begin
  -- the ALTER TABLE below would wake relay._on_ddl, which calls this function: say we are already here
  perform set_config('relay._installing', 'on', true);
  select * into a from relay._watch_args(p_relid);
  args := format('%L, %L, %L, %L', coalesce(a.tenant_column, ''), a.pk_columns::text, a.exclude_columns::text, a.numeric_columns::text);
  for t in select tgname from pg_trigger where tgrelid = p_relid and tgname like 'relay\_capture\_%' loop
    execute format('drop trigger %I on %s', t.tgname, p_relid::regclass);
  end loop;
  execute format('create trigger relay_capture_insert after insert on %s referencing new table as relay_rows for each statement execute function relay.capture(%s)', p_relid::regclass, args);
  execute format('create trigger relay_capture_update after update on %s referencing old table as relay_old new table as relay_new for each statement execute function relay.capture(%s)', p_relid::regclass, args);
  execute format('create trigger relay_capture_delete after delete on %s referencing old table as relay_rows for each statement execute function relay.capture(%s)', p_relid::regclass, args);
  execute format('create trigger relay_capture_truncate after truncate on %s for each statement execute function relay.capture(%s)', p_relid::regclass, args);
  -- ALWAYS: also in session_replication_role = replica (logical replication apply, data-only restores)
  execute format('alter table %s enable always trigger relay_capture_insert, enable always trigger relay_capture_update, enable always trigger relay_capture_delete, enable always trigger relay_capture_truncate', p_relid::regclass);
  perform set_config('relay._installing', '', true);
end $$;

create function relay.watch(tbl regclass, tenant_column name, exclude_columns name[] default '{}') returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  rel pg_class;
  tenant_att smallint;
  excl smallint[] := '{}';
  c name;
  att smallint;
  pk smallint[];
begin
  select * into rel from pg_class where oid = tbl;
  if rel.relnamespace = 'relay'::regnamespace then
    raise exception 'pgrelay: % belongs to pgrelay and cannot be watched', tbl using errcode = 'PR005';
  end if;
  if rel.relkind not in ('r', 'p') then
    raise exception 'pgrelay: % is not a table (views, foreign and materialized tables cannot be watched)', tbl using errcode = 'PR007';
  end if;
  -- the wire names tables schema.table: "a.b".c and a."b.c" would be one name there
  if position('.' in rel.relname) > 0 or position('.' in (select nspname from pg_namespace where oid = rel.relnamespace)) > 0 then
    raise exception 'pgrelay: % has a dot in its schema or table name, which clients could not tell apart from schema.table', tbl
      using errcode = 'PR010', hint = 'Rename the schema or table.';
  end if;
  select i.indkey::smallint[] into pk from pg_index i where i.indrelid = tbl and i.indisprimary;
  if pk is null then
    raise exception 'pgrelay: table % has no primary key', tbl
      using errcode = 'PR001', hint = 'Add a primary key: clients patch their caches by it.';
  end if;
  if tenant_column is not null then
    select a.attnum into tenant_att from pg_attribute a where a.attrelid = tbl and a.attname = tenant_column and a.attnum > 0 and not a.attisdropped;
    if tenant_att is null then
      raise exception 'pgrelay: tenant column "%" does not exist in table %', tenant_column, tbl using errcode = 'PR002';
    end if;
  end if;
  foreach c in array coalesce(exclude_columns, '{}') loop
    select a.attnum into att from pg_attribute a where a.attrelid = tbl and a.attname = c and a.attnum > 0 and not a.attisdropped;
    if att is null then
      raise exception 'pgrelay: excluded column "%" does not exist in table %', c, tbl using errcode = 'PR003';
    end if;
    if att = any (pk) then
      raise exception 'pgrelay: column "%" of table % is part of the primary key and cannot be excluded', c, tbl using errcode = 'PR004';
    end if;
    if att = tenant_att then
      raise exception 'pgrelay: column "%" of table % is the tenant column and cannot be excluded', c, tbl using errcode = 'PR004';
    end if;
    excl := excl || att;
  end loop;
  if current_setting('max_prepared_transactions')::integer > 0 then
    raise warning 'pgrelay: max_prepared_transactions is %, but a transaction that changes a watched table cannot be PREPAREd (it sends NOTIFY)', current_setting('max_prepared_transactions');
  end if;
  insert into relay.watches (relid, tenant_attnum, exclude_attnums) values (tbl, tenant_att, excl)
  on conflict (relid) do update set tenant_attnum = excluded.tenant_attnum, exclude_attnums = excluded.exclude_attnums, watched_at = now();
  perform relay._install(tbl);
  perform pg_notify('relay_config', json_build_object('v', 1, 'watch', relay._qualified(tbl))::text);
end $$;

create function relay._qualified(tbl oid) returns text
language sql stable set search_path = pg_catalog, pg_temp as $$
  select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = tbl
$$;

create function relay.unwatch(tbl regclass) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  t record;
begin
  if not exists (select 1 from relay.watches where relid = tbl) then
    raise exception 'pgrelay: table % is not watched', tbl using errcode = 'PR009';
  end if;
  for t in select tgname from pg_trigger where tgrelid = tbl and tgname like 'relay\_capture\_%' loop
    execute format('drop trigger %I on %s', t.tgname, tbl);
  end loop;
  delete from relay.watches where relid = tbl;
  perform pg_notify('relay_config', json_build_object('v', 1, 'unwatch', relay._qualified(tbl))::text);
end $$;

-- What is captured and how. `columns` lists every streamed column with its type (the relay uses them for filters).
create view relay.watched as
select
  n.nspname::text as schema_name,
  c.relname::text as table_name,
  n.nspname || '.' || c.relname as "table",
  a.tenant_column,
  a.pk_columns as primary_key,
  a.exclude_columns,
  a.numeric_columns,
  (select jsonb_agg(jsonb_build_object('name', att.attname, 'type', format_type(att.atttypid, att.atttypmod),
                                       'base', (case when t.typtype = 'd' then t.typbasetype else t.oid end)::regtype::text) order by att.attnum)
     from pg_attribute att join pg_type t on t.oid = att.atttypid
     where att.attrelid = w.relid and att.attnum > 0 and not att.attisdropped and not (att.attnum = any (w.exclude_attnums))) as columns,
  w.watched_at,
  (select count(*) = 4 from pg_trigger tg where tg.tgrelid = w.relid and tg.tgname like 'relay\_capture\_%' and tg.tgenabled = 'A') as capturing
from relay.watches w
join pg_class c on c.oid = w.relid
join pg_namespace n on n.oid = c.relnamespace
cross join lateral relay._watch_args(w.relid) a;

-- Keeps trigger arguments in step with ALTER TABLE (renamed columns, new int8/numeric columns, a new primary key).
create function relay._on_ddl() returns event_trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  r record;
begin
  if current_setting('relay._installing', true) = 'on' then return; end if;
  for r in select distinct d.objid from pg_event_trigger_ddl_commands() d
           join relay.watches w on w.relid = d.objid
           where d.classid = 'pg_class'::regclass and d.command_tag = 'ALTER TABLE' loop
    perform relay._install(r.objid);
  end loop;
end $$;

create function relay._on_drop() returns event_trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  delete from relay.watches w using pg_event_trigger_dropped_objects() d
  where d.classid = 'pg_class'::regclass and d.objid = w.relid and d.object_type = 'table';
end $$;

-- Event triggers need a superuser; without one, re-run relay.watch after ALTER TABLE on a watched table.
do $$
begin
  if (select rolsuper from pg_roles where rolname = current_user) then
    create event trigger relay_ddl on ddl_command_end when tag in ('ALTER TABLE') execute function relay._on_ddl();
    create event trigger relay_drop on sql_drop execute function relay._on_drop();
  else
    raise notice 'pgrelay: not a superuser, so no event triggers: after ALTER TABLE on a watched table, run relay.watch on it again';
  end if;
end $$;

-- The position visible to the current snapshot: every transaction with seq <= it is visible, none above.
create function relay.position() returns bigint
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select greatest(coalesce((select max(seq) from relay.transactions), 0), (select pruned_through from relay.state))
$$;

-- Builds the WHERE clause of a filter ({"col": {"eq": v, "in": [...], ...}}), typed as the column is.
create function relay._filter_sql(tbl regclass, filter jsonb) returns text
language plpgsql stable set search_path = pg_catalog, pg_temp as $$
declare
  col record;
  op record;
  typ text;
  excluded smallint[];
  attnum smallint;
  cmp text;
  parts text[] := '{}';
begin
  if filter is null or filter = 'null'::jsonb then return 'true'; end if;
  if jsonb_typeof(filter) <> 'object' then
    raise exception 'pgrelay: a filter is an object of column names' using errcode = 'PR008';
  end if;
  select exclude_attnums into excluded from relay.watches where relid = tbl;
  for col in select key, value from jsonb_each(filter) loop
    select a.attnum, format_type(a.atttypid, a.atttypmod) into attnum, typ
      from pg_attribute a where a.attrelid = tbl and a.attname = col.key and a.attnum > 0 and not a.attisdropped;
    if attnum is null or attnum = any (coalesce(excluded, '{}')) then
      raise exception 'pgrelay: filter column "%" does not exist in %', col.key, tbl using errcode = 'PR008';
    end if;
    if jsonb_typeof(col.value) <> 'object' then
      raise exception 'pgrelay: the filter of column "%" must be an object such as {"eq": value}', col.key using errcode = 'PR008';
    end if;
    for op in select key, value from jsonb_each(col.value) loop
      cmp := case op.key when 'eq' then '=' when 'neq' then '<>' when 'lt' then '<' when 'lte' then '<='
                         when 'gt' then '>' when 'gte' then '>=' when 'in' then 'in' end;
      if cmp is null then
        raise exception 'pgrelay: unknown filter operator "%" (use eq, neq, lt, lte, gt, gte or in)', op.key using errcode = 'PR008';
      end if;
      if cmp = 'in' then
        if jsonb_typeof(op.value) <> 'array' then
          raise exception 'pgrelay: "in" takes an array' using errcode = 'PR008';
        end if;
        if typ in ('text', 'character varying', 'name') or typ like 'character varying(%' or typ like 'character(%' then
          parts := parts || format('%I collate "C" = any (array(select jsonb_array_elements_text(%L::jsonb)))', col.key, op.value::text);
        else
          parts := parts || format('%I = any (array(select jsonb_array_elements_text(%L::jsonb))::%s[])', col.key, op.value::text, typ);
        end if;
      elsif jsonb_typeof(op.value) = 'null' then
        if cmp = '=' then parts := parts || format('%I is null', col.key);
        elsif cmp = '<>' then parts := parts || format('%I is not null', col.key);
        else parts := parts || 'false'::text;
        end if;
      elsif jsonb_typeof(op.value) in ('object', 'array') then
        parts := parts || format('to_jsonb(%I) %s %L::jsonb', col.key, cmp, op.value::text);
      elsif typ in ('text', 'character varying', 'name') or typ like 'character varying(%' or typ like 'character(%' then
        -- text compares in code-point order, as the relay compares it
        parts := parts || format('%I collate "C" %s (%L::text collate "C")', col.key, cmp, op.value #>> '{}');
      else
        parts := parts || format('%I %s %L::%s', col.key, cmp, op.value #>> '{}', typ);
      end if;
    end loop;
  end loop;
  return coalesce(nullif(array_to_string(parts, ' and '), ''), 'true');
end $$;

-- The tenant's current rows (excluded columns removed, filter applied), each with the snapshot's position.
-- STABLE, so the rows and the position come from one snapshot. tenant => null reads every tenant.
create function relay.snapshot(tbl regclass, tenant text, filter jsonb default null) returns table (seq bigint, "row" jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set "TimeZone" = 'UTC'
set "IntervalStyle" = 'postgres'
set extra_float_digits = 1
as $$
declare
  a record;
begin
  if not exists (select 1 from relay.watches where relid = tbl) then
    raise exception 'pgrelay: table % is not watched', tbl using errcode = 'PR009';
  end if;
  select * into a from relay._watch_args(tbl);
  return query execute format(
    'select relay.position(), relay._row_json(to_jsonb(t), $1, $2) from %s t where %s and %s',
    tbl,
    case when tenant is null or a.tenant_column is null then 'true' else format('%I::text = %L', a.tenant_column, tenant) end,
    relay._filter_sql(tbl, filter))
  using a.exclude_columns, a.numeric_columns;
end $$;

-- One row per change with its transaction, for DBAs.
create view relay.audit as
select t.seq, t.committed_at, t.db_user, t.application_name, t.client_addr, t.actor, t.origin,
       c.tenant, c.schema_name || '.' || c.table_name as "table", c.op, c.pk, c.row, c.old, c.id as change_id, t.txid
from relay.transactions t
join relay.changes c on c.txid = t.txid;

-- Deletes history older than `keep` (never the newest transaction), in batches; returns the number of changes removed.
create function relay.prune(keep interval, batch_size integer default 5000) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  horizon bigint;
  removed bigint := 0;
  batch bigint;
  upto bigint;
begin
  select max(seq) into horizon from relay.transactions
   where committed_at < now() - keep and seq < (select max(seq) from relay.transactions);
  if horizon is null then return 0; end if;
  loop
    select max(seq) into upto from (select seq from relay.transactions where seq <= horizon order by seq limit batch_size) s;
    exit when upto is null;
    with gone as (delete from relay.transactions where seq <= upto returning txid)
    delete from relay.changes c using gone where c.txid = gone.txid;
    get diagnostics batch = row_count;
    removed := removed + batch;
  end loop;
  update relay.state set pruned_through = greatest(pruned_through, horizon);
  return removed;
end $$;

-- Least privilege: writers need nothing here (capture is SECURITY DEFINER); the relay's role reads and listens.
revoke all on all functions in schema relay from public;
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'relay_reader') then
    create role relay_reader nologin;
  end if;
end $$;
grant usage on schema relay to relay_reader;
grant select on all tables in schema relay to relay_reader;
grant execute on function relay.snapshot(regclass, text, jsonb), relay.position(), relay.prune(interval, integer) to relay_reader;

-- Down Migration
drop event trigger if exists relay_ddl;
drop event trigger if exists relay_drop;
do $$
declare
  w record;
begin
  for w in select relid from relay.watches where exists (select 1 from pg_class where oid = relid) loop
    execute format('drop trigger if exists relay_capture_insert on %s', w.relid::regclass);
    execute format('drop trigger if exists relay_capture_update on %s', w.relid::regclass);
    execute format('drop trigger if exists relay_capture_delete on %s', w.relid::regclass);
    execute format('drop trigger if exists relay_capture_truncate on %s', w.relid::regclass);
  end loop;
end $$;
drop view if exists relay.audit;
drop view if exists relay.watched;
drop function if exists relay.prune(interval, integer);
drop function if exists relay.snapshot(regclass, text, jsonb);
drop function if exists relay._filter_sql(regclass, jsonb);
drop function if exists relay.position();
drop function if exists relay._on_ddl();
drop function if exists relay._on_drop();
drop function if exists relay.unwatch(regclass);
drop function if exists relay.watch(regclass, name, name[]);
drop function if exists relay._qualified(oid);
drop function if exists relay._install(oid);
drop table if exists relay.changes;
drop function if exists relay.sequence();
drop function if exists relay.capture();
drop function if exists relay._row_json(jsonb, text[], text[]);
drop function if exists relay._watch_args(oid);
drop table if exists relay.watches;
drop table if exists relay.transactions;
drop sequence if exists relay.commit_seq;
drop table if exists relay.state;
revoke all on schema relay from relay_reader;
revoke all on all tables in schema relay from relay_reader;
do $$
begin
  drop role relay_reader;
exception when dependent_objects_still_exist then
  raise notice 'pgrelay: role relay_reader is still used by another database; kept';
end $$;
