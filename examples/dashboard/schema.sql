-- The dashboard's table, captured by pgrelay, with a few orders for two tenants.
-- psql "$(cat .pgrelay/database-url)" -f examples/dashboard/schema.sql
create table if not exists orders (
  id bigserial primary key,
  tenant_id text not null,
  customer text not null,
  total numeric(10, 2) not null,
  status text not null default 'open',
  created_at timestamptz not null default now()
);

-- Capture the table; each row belongs to the tenant named in tenant_id.
select relay.watch('orders', 'tenant_id');

insert into orders (tenant_id, customer, total, status) values
  ('acme', 'Ada Lovelace', 120.00, 'paid'),
  ('acme', 'Grace Hopper', 75.50, 'open'),
  ('acme', 'Alan Turing', 310.25, 'paid'),
  ('acme', 'Edsger Dijkstra', 42.00, 'cancelled'),
  ('acme', 'Barbara Liskov', 99.90, 'open'),
  ('globex', 'Hank Scorpio', 999.99, 'paid');
