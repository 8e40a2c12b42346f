-- Up Migration
-- Presence (issue 14): who is connected to each tenant, shared by every relay through Postgres. Each relay lists the
-- members of its own sockets in relay.presence under its instance id, and keeps one heartbeat row in
-- relay.presence_relays that it refreshes every third of its time to live. A member is present while some relay with a
-- live heartbeat lists it, so one person on several sockets or relays is one member. A relay that dies (SIGKILL, lost
-- network) stops refreshing: once its heartbeat expires relay.presence_members no longer counts it, and the next
-- relay.presence_sweep (every relay with members runs one every third of the time to live) deletes it with its members
-- and tells the other relays. Relays learn of changes from NOTIFY relay_presence, which names the tenants that changed:
-- one notification per batch, and each relay re-reads those tenants in one query.
-- The relay's role writes here only through the SECURITY DEFINER functions below; it cannot read or write the tables.

create table relay.presence_relays (
  relay uuid primary key,
  expires_at timestamptz not null
);

create table relay.presence (
  relay uuid not null references relay.presence_relays on delete cascade,
  tenant text not null,
  sub text not null,
  name text,
  joined_at timestamptz not null default now(),
  primary key (relay, tenant, sub)
);
create index presence_tenant on relay.presence (tenant, sub);

-- Tells the relays which tenants' members changed: {"v":1,"relay":"<id>","tenants":[…]}, or {"v":1,"relay":…,"all":true}
-- when the list would not fit well inside a notification's 8000 bytes (each relay then re-reads all of its tenants).
-- relay is null for a sweep, which no relay wrote for.
create function relay._presence_notify(p_relay uuid, p_tenants text[]) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  payload text;
begin
  if coalesce(cardinality(p_tenants), 0) = 0 then return; end if;
  payload := json_build_object('v', 1, 'relay', p_relay, 'tenants', p_tenants)::text;
  if octet_length(payload) > 7000 then
    payload := json_build_object('v', 1, 'relay', p_relay, 'all', true)::text;
  end if;
  perform pg_notify('relay_presence', payload);
end $$;

-- One relay's batch: refreshes its heartbeat for p_ttl_ms, removes the members in p_leaves ([{"t": tenant, "s": sub}])
-- or, with p_replace, all of its members, then adds those in p_joins ([{"t": tenant, "s": sub, "n": name or null}]).
-- One statement and at most one notification, however many sockets joined or left. Returns false when the relay had no
-- heartbeat row: its first call, or it was swept after missing its refreshes, and then its members are gone and it must
-- send them again with p_replace.
create function relay.presence_sync(p_relay uuid, p_ttl_ms integer, p_joins jsonb default '[]', p_leaves jsonb default '[]', p_replace boolean default false)
returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  known boolean;
  gone text[];
  added text[];
begin
  update relay.presence_relays set expires_at = now() + p_ttl_ms * interval '1 millisecond' where relay = p_relay;
  known := found;
  if not known then
    insert into relay.presence_relays (relay, expires_at) values (p_relay, now() + p_ttl_ms * interval '1 millisecond');
  end if;
  with d as (
    delete from relay.presence p
    where p.relay = p_relay
      and (p_replace or (p.tenant, p.sub) in (select l ->> 't', l ->> 's' from jsonb_array_elements(p_leaves) l))
    returning p.tenant)
  select array_agg(distinct d.tenant) into gone from d;
  with a as (
    insert into relay.presence (relay, tenant, sub, name)
    select p_relay, j ->> 't', j ->> 's', j ->> 'n' from jsonb_array_elements(p_joins) j
    on conflict (relay, tenant, sub) do update set name = excluded.name
    returning tenant)
  select array_agg(distinct a.tenant) into added from a;
  perform relay._presence_notify(p_relay, array(select unnest(gone) union select unnest(added)));
  return known;
end $$;

-- The members of each tenant in p_tenants: every sub listed by a relay whose heartbeat has not expired, once, with a
-- display name (the smallest, when its sockets' tokens disagree).
create function relay.presence_members(p_tenants text[]) returns table (tenant text, sub text, name text)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select p.tenant, p.sub, min(p.name)
  from relay.presence p
  join relay.presence_relays r on r.relay = p.relay
  where p.tenant = any (p_tenants) and r.expires_at > now()
  group by p.tenant, p.sub
  order by p.tenant, p.sub
$$;

-- Deletes the relays whose heartbeat expired, and their members; tells the relays left which tenants lost members.
-- Relays sweep concurrently: SKIP LOCKED leaves each expired relay to one of them (and a relay refreshing its
-- heartbeat right now to that refresh). Returns the number of relays deleted.
create function relay.presence_sweep() returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  dead uuid[];
  changed text[];
begin
  dead := array(select r.relay from relay.presence_relays r where r.expires_at <= now() for update skip locked);
  if cardinality(dead) = 0 then return 0; end if;
  changed := array(select distinct p.tenant from relay.presence p where p.relay = any (dead));
  delete from relay.presence_relays r where r.relay = any (dead);
  perform relay._presence_notify(null, changed);
  return cardinality(dead);
end $$;

-- A relay shutting down: its members leave now rather than when its heartbeat expires.
create function relay.presence_end(p_relay uuid) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  changed text[];
begin
  changed := array(select distinct p.tenant from relay.presence p where p.relay = p_relay);
  delete from relay.presence_relays r where r.relay = p_relay;
  perform relay._presence_notify(p_relay, changed);
end $$;

revoke all on function relay._presence_notify(uuid, text[]), relay.presence_sync(uuid, integer, jsonb, jsonb, boolean),
  relay.presence_members(text[]), relay.presence_sweep(), relay.presence_end(uuid) from public;
grant execute on function relay.presence_sync(uuid, integer, jsonb, jsonb, boolean), relay.presence_members(text[]),
  relay.presence_sweep(), relay.presence_end(uuid) to relay_reader;

-- Down Migration
drop function relay.presence_end(uuid);
drop function relay.presence_sweep();
drop function relay.presence_members(text[]);
drop function relay.presence_sync(uuid, integer, jsonb, jsonb, boolean);
drop function relay._presence_notify(uuid, text[]);
drop table relay.presence;
drop table relay.presence_relays;
