-- The table every benchmark writes, the same for all three targets. `ts` is taken when the row is written
-- (clock_timestamp(), not now(): one per statement, not per transaction), and receivers measure latency from it.
-- `mid` is the writer's id for this version of the row, so that receivers can count each delivery exactly.
create table orders (
  id bigserial primary key,
  tenant_id text not null,
  customer text not null,
  amount numeric(12, 2) not null,
  status text not null,
  mid bigint not null default 0,
  ts timestamptz not null default clock_timestamp()
);
create index orders_tenant_id on orders (tenant_id);
