-- Up Migration
-- Access rules per role: which rows (a filter whose values may name token claims) and which columns a role sees of a
-- watched table. relay.allow / relay.disallow declare them, relay.rules keeps them, relay.watched lists them; the relay
-- enforces them on every path (live, snapshot, resume). A table with no rule streams its whole tenant, as before.

-- A rule's row condition with every {"claim": …} value replaced by null: what relay._filter_sql can check for columns,
-- operators and literal types.
create function relay._rule_shape(p_rows jsonb) returns jsonb
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select coalesce(jsonb_object_agg(c.key, (
    select coalesce(jsonb_object_agg(o.key, case
      when jsonb_typeof(o.value) = 'object' and o.value ? 'claim' and (select count(*) from jsonb_object_keys(o.value)) = 1
        then case when o.key = 'in' then '[]'::jsonb else 'null'::jsonb end
      else o.value end), '{}'::jsonb)
    from jsonb_each(case when jsonb_typeof(c.value) = 'object' then c.value else '{}'::jsonb end) o)), '{}'::jsonb)
  from jsonb_each(p_rows) c
$$;

-- Declares (or replaces) what `role` sees of a watched table: the rows matching `rows` and the columns `columns`.
create function relay.allow(tbl regclass, role text, "rows" jsonb default null, columns name[] default null) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
#variable_conflict use_column
declare
  w relay.watches;
  c name;
  o record;
  streamed text[];
begin
  select * into w from relay.watches where relid = tbl and active;
  if not found then
    raise exception 'pgrelay: table % is not watched; watch it first', tbl using errcode = 'PR009';
  end if;
  if role is null or role = '' then
    raise exception 'pgrelay: a rule needs a role (the value of the token''s role claim)' using errcode = 'PR013';
  end if;
  streamed := array(select s.attname from relay._streamed(w.relid, w.exclude_attnums) s);
  if "rows" = 'null'::jsonb then "rows" := null; end if;
  if "rows" is not null then
    if jsonb_typeof("rows") <> 'object' then
      raise exception 'pgrelay: rows must be a filter object such as {"cajero_id": {"eq": {"claim": "sub"}}}' using errcode = 'PR013';
    end if;
    for o in select c2.key as col, x.key as op, x.value from jsonb_each("rows") c2
             cross join lateral jsonb_each(case when jsonb_typeof(c2.value) = 'object' then c2.value else '{}'::jsonb end) x loop
      if jsonb_typeof(o.value) = 'object' and o.value ? 'claim'
         and (jsonb_typeof(o.value -> 'claim') <> 'string' or o.value ->> 'claim' = '' or (select count(*) from jsonb_object_keys(o.value)) <> 1) then
        raise exception 'pgrelay: the value of "%" on column "%" must be {"claim": "<claim name>"} or a literal', o.op, o.col using errcode = 'PR013';
      end if;
    end loop;
    -- columns, operators and literal values checked as a snapshot would use them (claims stand in as null)
    begin
      execute format('select 1 from %s where %s limit 0', tbl, relay._filter_sql(tbl, relay._rule_shape("rows")));
    exception when sqlstate 'PR008' or data_exception then
      raise exception 'pgrelay: the rows of this rule are not a valid filter of %: %', tbl, regexp_replace(sqlerrm, '^pgrelay: ', '') using errcode = 'PR013';
    end;
  end if;
  foreach c in array coalesce(columns, '{}') loop
    if not (c = any (streamed)) then
      raise exception 'pgrelay: column "%" is not a streamed column of % (it does not exist or is excluded)', c, tbl using errcode = 'PR013';
    end if;
  end loop;
  insert into relay.rules (relid, role, "rows", columns) values (tbl, role, "rows", columns)
  on conflict (relid, role) do update set "rows" = excluded."rows", columns = excluded.columns, created_at = now();
  perform pg_notify('relay_config', json_build_object('v', 1, 'rules', relay._qualified(tbl))::text);
end $$;

-- Removes the rule of one role (role => null: every rule of the table, which then streams its whole tenant again).
create function relay.disallow(tbl regclass, role text default null) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  n integer;
begin
  delete from relay.rules r where r.relid = tbl and (disallow.role is null or r.role = disallow.role);
  get diagnostics n = row_count;
  perform pg_notify('relay_config', json_build_object('v', 1, 'rules', relay._qualified(tbl))::text);
  return n;
end $$;

-- Several filters AND-ed ([rule, filter]): the relay passes a rule's resolved condition and the client's filter together.
alter function relay._filter_sql(regclass, jsonb) rename to _filter_sql_one;
create function relay._filter_sql(tbl regclass, filter jsonb) returns text
language sql stable set search_path = pg_catalog, pg_temp as $$
  select case when jsonb_typeof(filter) = 'array'
    then coalesce((select string_agg('(' || relay._filter_sql_one(tbl, f) || ')', ' and ' order by i) from jsonb_array_elements(filter) with ordinality e(f, i)), 'true')
    else relay._filter_sql_one(tbl, filter) end
$$;

revoke all on function relay.allow(regclass, text, jsonb, name[]), relay.disallow(regclass, text), relay._rule_shape(jsonb),
  relay._filter_sql(regclass, jsonb) from public;
-- Down Migration
drop function relay._filter_sql(regclass, jsonb);
alter function relay._filter_sql_one(regclass, jsonb) rename to _filter_sql;
drop function relay.disallow(regclass, text);
drop function relay.allow(regclass, text, jsonb, name[]);
drop function relay._rule_shape(jsonb);
delete from relay.rules; -- the table stays with relay.watched (1796400000004); its rules go with relay.allow
