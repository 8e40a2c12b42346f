// The dashboard's row types as they arrive from the relay: int8, numeric and timestamps are JSON strings.
// A kysely-codegen `DB` interface works here as well; the client maps its column types to these wire types.

export interface Order {
  id: string;
  tenant_id: string;
  customer: string;
  /** numeric(10,2), e.g. "120.00". */
  total: string;
  status: string;
  /** ISO 8601 in UTC. */
  created_at: string;
}

export interface DB {
  orders: Order;
}
