-- Up Migration
-- Choosing what is captured: relay.watch / relay.unwatch, the relay.watched view (with the access rules of relay.rules,
-- which relay.allow in 1796400000009 fills), and the event triggers that keep capture in step with ALTER TABLE and
-- DROP TABLE.

-- The key columns of a unique, non-partial, immediate index on plain columns that are all NOT NULL, in index order.
create function relay._index_keys(i pg_index) returns smallint[]
language sql stable set search_path = pg_catalog, pg_temp as $$
  select case when i.indisunique and i.indisvalid and i.indimmediate and i.indpred is null
               and not exists (select 1 from unnest(i.indkey::smallint[]) with ordinality u(k, o) where o <= i.indnkeyatts and k = 0)
               and not exists (select 1 from unnest(i.indkey::smallint[]) with ordinality u(k, o)
                               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.k
                               where u.o <= i.indnkeyatts and not a.attnotnull)
    then array(select k from unnest(i.indkey::smallint[]) with ordinality u(k, o) where o <= i.indnkeyatts order by o) end
$$;

-- Fills in what readers use (names, key, how values render) from relay.watches' attribute numbers and the catalog,
-- then (re)creates the capture triggers.
create function relay._install(p_relid oid) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  cfg relay.watches;
  t record;
  args text;
begin
  -- the ALTER TABLE below would wake relay._on_ddl, which calls this function: say we are already here
  perform set_config('relay._installing', 'on', true);
  update relay.watches w set
    schema_name = n.nspname,
    table_name = c.relname,
    tenant_column = (select a.attname from pg_attribute a where a.attrelid = w.relid and a.attnum = w.tenant_attnum and not a.attisdropped),
    key_columns = array(select a.attname from unnest(w.key_attnums) with ordinality k(attnum, o)
                        join pg_attribute a on a.attrelid = w.relid and a.attnum = k.attnum order by k.o),
    exclude_columns = array(select a.attname from pg_attribute a where a.attrelid = w.relid and a.attnum = any (w.exclude_attnums)
                            and not a.attisdropped order by a.attnum),
    numeric_columns = array(select s.attname from relay._streamed(w.relid, w.exclude_attnums) s where s.base in ('int8'::regtype, 'numeric'::regtype) order by s.attnum),
    tstz_columns = array(select s.attname from relay._streamed(w.relid, w.exclude_attnums) s where s.base = 'timestamptz'::regtype order by s.attnum),
    interval_columns = array(select s.attname from relay._streamed(w.relid, w.exclude_attnums) s where s.base = 'interval'::regtype and not s.is_array order by s.attnum)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where w.relid = p_relid and c.oid = p_relid
  returning w.* into cfg;
  perform relay._build_render();
  args := case when cfg.exclude_columns <> '{}' then format('%L', cfg.exclude_columns::text) else '' end;
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

-- The streamed (not excluded) columns of a table, with the type under any domain and array.
create function relay._streamed(p_relid oid, exclude_attnums smallint[])
returns table (attnum smallint, attname text, type text, base regtype, is_array boolean)
language sql stable set search_path = pg_catalog, pg_temp as $$
  select a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), coalesce(nullif(e.typelem, 0), e.oid)::regtype, e.typelem <> 0 and e.typcategory = 'A'
  from pg_attribute a
  join pg_type t on t.oid = a.atttypid
  join pg_type e on e.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
  where a.attrelid = p_relid and a.attnum > 0 and not a.attisdropped and not (a.attnum = any (exclude_attnums))
$$;

create function relay._qualified(tbl oid) returns text
language sql stable set search_path = pg_catalog, pg_temp as $$
  select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = tbl
$$;

-- Installs capture on a table (again: updates its configuration). Rows are identified by key_columns when given (the
-- columns of a unique index on NOT NULL columns, or of the primary key), else by the primary key, else by the
-- REPLICA IDENTITY index, else by the table's only unique index on NOT NULL columns.
create function relay.watch(tbl regclass, tenant_column name, exclude_columns name[] default '{}', key_columns name[] default null) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  rel pg_class;
  tenant_att smallint;
  excl smallint[] := '{}';
  keys smallint[];
  source text;
  wanted smallint[];
  candidates oid[];
  c name;
  att smallint;
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

  if key_columns is not null then
    foreach c in array key_columns loop
      select a.attnum into att from pg_attribute a where a.attrelid = tbl and a.attname = c and a.attnum > 0 and not a.attisdropped;
      if att is null then
        raise exception 'pgrelay: key column "%" does not exist in table %', c, tbl using errcode = 'PR001';
      end if;
      wanted := wanted || att;
    end loop;
    select case when i.indisprimary then 'primary key' else 'unique index ' || (select relname from pg_class where oid = i.indexrelid) end into source
    from pg_index i
    where i.indrelid = tbl and relay._index_keys(i) is not null
      and (select array_agg(k order by k) from unnest(relay._index_keys(i)) k) = (select array_agg(k order by k) from unnest(wanted) k)
    order by i.indisprimary desc limit 1;
    if source is null then
      raise exception 'pgrelay: table % has no unique index on (%) whose columns are all NOT NULL', tbl, array_to_string(key_columns, ', ')
        using errcode = 'PR001', hint = 'Name the columns of the primary key or of such an index, or create one.';
    end if;
    keys := wanted;
  else
    select array(select k from unnest(i.indkey::smallint[]) with ordinality u(k, o) where o <= i.indnkeyatts order by o), 'primary key'
      into keys, source from pg_index i where i.indrelid = tbl and i.indisprimary;
    if keys is null and rel.relreplident = 'i' then
      select relay._index_keys(i), 'replica identity' into keys, source from pg_index i where i.indrelid = tbl and i.indisreplident;
    end if;
    if keys is null then
      candidates := array(select i.indexrelid from pg_index i join pg_class c on c.oid = i.indexrelid
                          where i.indrelid = tbl and relay._index_keys(i) is not null order by c.relname);
      if cardinality(candidates) = 1 then
        select relay._index_keys(i), 'unique index ' || (select relname from pg_class where oid = i.indexrelid) into keys, source
        from pg_index i where i.indexrelid = candidates[1];
      elsif cardinality(candidates) > 1 then
        raise exception 'pgrelay: table % has no primary key, and several unique indexes could identify its rows (%)', tbl,
          (select string_agg(relname, ', ' order by relname) from pg_class where oid = any (candidates))
          using errcode = 'PR001', hint = 'Name the one to use: relay.watch(..., key_columns => ''{col1,col2}'') or pgrelay watch --key col1,col2.';
      else
        raise exception 'pgrelay: table % has no primary key', tbl
          using errcode = 'PR001',
                hint = 'Clients patch their caches by a key: add a primary key, or a unique index on NOT NULL columns (then name its columns with key_columns, or set REPLICA IDENTITY USING INDEX).';
      end if;
    end if;
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
    if att = any (keys) then
      raise exception 'pgrelay: column "%" of table % is part of the % and cannot be excluded', c, tbl,
        case when source = 'primary key' then 'primary key' else 'key' end using errcode = 'PR004';
    end if;
    if att = tenant_att then
      raise exception 'pgrelay: column "%" of table % is the tenant column and cannot be excluded', c, tbl using errcode = 'PR004';
    end if;
    excl := excl || att;
  end loop;

  insert into relay.watches (relid, schema_name, table_name, tenant_attnum, key_attnums, exclude_attnums, key_columns, key_source)
  values (tbl, '', '', tenant_att, keys, excl, '{}', source)
  on conflict (relid) do update set tenant_attnum = excluded.tenant_attnum, key_attnums = excluded.key_attnums,
    exclude_attnums = excluded.exclude_attnums, key_source = excluded.key_source, watched_at = now(), active = true;
  perform relay._install(tbl);
  perform pg_notify('relay_config', json_build_object('v', 1, 'watch', relay._qualified(tbl))::text);
end $$;

-- Removes capture from a table; its history stays.
create function relay.unwatch(tbl regclass) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  t record;
begin
  if not exists (select 1 from relay.watches where relid = tbl and active) then
    raise exception 'pgrelay: table % is not watched', tbl using errcode = 'PR009';
  end if;
  for t in select tgname from pg_trigger where tgrelid = tbl and tgname like 'relay\_capture\_%' loop
    execute format('drop trigger %I on %s', t.tgname, tbl);
  end loop;
  update relay.watches set active = false where relid = tbl;
  perform pg_notify('relay_config', json_build_object('v', 1, 'unwatch', relay._qualified(tbl))::text);
end $$;

-- Access rules per role: which rows (a filter whose values may name token claims) and which columns a role sees of a
-- watched table. relay.allow / relay.disallow (1796400000009) declare them; the relay reads them through relay.watched.
create table relay.rules (
  relid oid not null references relay.watches (relid) on delete cascade,
  role text not null check (role <> ''),
  -- a filter ({"col": {"eq": value}}) whose values may be {"claim": "name"}; null: every row of the tenant
  "rows" jsonb,
  -- the columns the role sees (the key columns always); null: every streamed column
  columns name[],
  created_at timestamptz not null default now(),
  primary key (relid, role)
);

-- What is captured and how. `primary_key` lists the columns rows are keyed by (whatever `key_source` they come
-- from); `columns` every streamed column with its type (the relay uses them for filters); `relid` names the table to
-- relay.snapshot by oid (the relay needs no USAGE on the watched tables' schemas); `rules` holds one object per role,
-- {"role", "rows", "columns"}, by role.
create view relay.watched as
select
  w.schema_name,
  w.table_name,
  w.schema_name || '.' || w.table_name as "table",
  w.tenant_column,
  w.key_columns as primary_key,
  w.key_source,
  w.exclude_columns,
  w.numeric_columns,
  (select jsonb_agg(jsonb_build_object('name', s.attname, 'type', s.type,
                                       'base', (case when t.typtype = 'd' then t.typbasetype else t.oid end)::regtype::text) order by s.attnum)
     from relay._streamed(w.relid, w.exclude_attnums) s
     join pg_attribute a on a.attrelid = w.relid and a.attnum = s.attnum
     join pg_type t on t.oid = a.atttypid) as columns,
  w.watched_at,
  (select count(*) = 4 from pg_trigger tg where tg.tgrelid = w.relid and tg.tgname like 'relay\_capture\_%' and tg.tgenabled = 'A') as capturing,
  w.relid,
  coalesce((select jsonb_agg(jsonb_build_object('role', r.role, 'rows', r."rows", 'columns', to_jsonb(r.columns)) order by r.role)
              from relay.rules r where r.relid = w.relid), '[]'::jsonb) as rules
from relay.watches w
where w.active;

-- Keeps capture in step with ALTER TABLE (renamed columns, new int8/numeric/timestamptz columns, a renamed table).
create function relay._on_ddl() returns event_trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  r record;
begin
  if current_setting('relay._installing', true) = 'on' then return; end if;
  for r in select distinct d.objid from pg_event_trigger_ddl_commands() d
           join relay.watches w on w.relid = d.objid and w.active
           where d.classid = 'pg_class'::regclass and d.command_tag = 'ALTER TABLE' loop
    perform relay._install(r.objid);
  end loop;
end $$;

-- A dropped watched table is unwatched, and its subscribers are told as relay.unwatch tells them.
create function relay._on_drop() returns event_trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  t text;
begin
  for t in
    update relay.watches w set active = false from pg_event_trigger_dropped_objects() d
    where d.classid = 'pg_class'::regclass and d.objid = w.relid and d.object_type = 'table' and w.active
    returning w.schema_name || '.' || w.table_name
  loop
    perform pg_notify('relay_config', json_build_object('v', 1, 'unwatch', t)::text);
  end loop;
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

-- Down Migration
drop event trigger if exists relay_ddl;
drop event trigger if exists relay_drop;
do $$
declare
  w record;
begin
  for w in select relid from relay.watches where active and exists (select 1 from pg_class where oid = relid) loop
    execute format('drop trigger if exists relay_capture_insert on %s', w.relid::regclass);
    execute format('drop trigger if exists relay_capture_update on %s', w.relid::regclass);
    execute format('drop trigger if exists relay_capture_delete on %s', w.relid::regclass);
    execute format('drop trigger if exists relay_capture_truncate on %s', w.relid::regclass);
  end loop;
end $$;
drop function if exists relay._on_drop();
drop function if exists relay._on_ddl();
drop view if exists relay.watched;
drop table if exists relay.rules;
drop function if exists relay.unwatch(regclass);
drop function if exists relay.watch(regclass, name, name[], name[]);
drop function if exists relay._qualified(oid);
drop function if exists relay._install(oid);
drop function if exists relay._streamed(oid, smallint[]);
drop function if exists relay._index_keys(pg_index);
