-- Up Migration
-- Reading a table as of a seq position: relay.snapshot (and the filter it applies), so that a dashboard loads rows and
-- then follows the stream from exactly that position, with nothing torn.

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
  select exclude_attnums into excluded from relay.watches where relid = tbl and active;
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

-- The tenant's current rows (excluded columns removed, filter applied), each with the position `seq` they are exact
-- at: live changes follow from `seq`. STABLE, so the rows and the position come from one snapshot.
-- A transaction that committed after the ticker's last tick is visible in the table but has no seq yet (it will get
-- one above `seq`): the rows it touched are read back to their state at `seq` from the log (every change carries the
-- old row), so the stream applies it, once, on top. tenant => null reads every tenant.
create function relay.snapshot(tbl regclass, tenant text, filter jsonb default null) returns table (seq bigint, "row" jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set "TimeZone" = 'UTC'
set "IntervalStyle" = 'postgres'
set extra_float_digits = 1
as $$
declare
  w relay.watches;
  st relay.ticker;
  pos bigint;
  cond text;
  render text;
  done xid8[];
begin
  select * into w from relay.watches where relid = tbl and active;
  if not found then
    raise exception 'pgrelay: table % is not watched', tbl using errcode = 'PR009';
  end if;
  select * into st from relay.ticker;
  pos := greatest(st.last_seq, (select pruned_through from relay.state));
  cond := case when tenant is null or w.tenant_column is null then 'true' else format('%I::text = %L', w.tenant_column, tenant) end
          || ' and ' || relay._filter_sql(tbl, filter);
  render := format('relay._render(%s, to_jsonb(t.*) - %L::text[])', tbl::oid, w.exclude_columns);
  done := array(select x from pg_snapshot_xip(st.snap) x where pg_visible_in_snapshot(x, pg_current_snapshot()));
  if not exists (select 1 from relay.log l where l.txid >= pg_snapshot_xmax(st.snap) and l.relid = tbl)
     and not exists (select 1 from relay.log l where l.txid = any (done) and l.relid = tbl) then
    return query execute format('select $1, %s from %s t where %s', render, tbl, cond) using pos;
    return;
  end if;
  if exists (select 1 from relay.log l where (l.txid >= pg_snapshot_xmax(st.snap) or l.txid = any (done)) and l.relid = tbl and l.op = 'truncate') then
    raise exception 'pgrelay: % was truncated after the last tick, so its rows before that cannot be read back; try again', tbl
      using errcode = 'PR011';
  end if;
  return query execute format($q$
    with pend as (
      select l.id, l.op, relay._render(l.relid, l.row) as row, relay._render(l.relid, l.old_row) as old_row
      from relay.log l where l.relid = $2 and (l.txid >= pg_snapshot_xmax($3) or l.txid = any ($4))
    ), touched as (
      -- each key a pending change touched, with its state before the first of them (null: no such row then)
      select distinct on (s.k) s.k as _pgrelay_key, s.before as _pgrelay_before from (
        select p.id, 0 as b, relay._key(case when p.op = 'update' then p.old_row else p.row end, $5) as k,
               case when p.op = 'update' then p.old_row else p.row end as before
        from pend p where p.op in ('update', 'delete')
        union all
        select p.id, 1, relay._key(p.row, $5), null from pend p where p.op in ('insert', 'update')
      ) s order by s.k, s.id, s.b
    )
    select $1, s.r from (select %1$s as r from %2$s t where %3$s) s
    where relay._key(s.r, $5) not in (select _pgrelay_key from touched)
    union all
    select $1, x._pgrelay_before from touched x cross join lateral jsonb_populate_record(null::%2$s, x._pgrelay_before) t
    where x._pgrelay_before is not null and %3$s
  $q$, render, tbl, cond)
  using pos, tbl::oid, st.snap, done, w.key_columns;
end $$;

-- Down Migration
drop function if exists relay.snapshot(regclass, text, jsonb);
drop function if exists relay._filter_sql(regclass, jsonb);
