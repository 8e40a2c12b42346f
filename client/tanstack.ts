// pgrelay/client/tanstack: TanStack Query v5 adapters (`@tanstack/query-core` is an optional peer dependency). Listed by hand.
export { syncQueryClient, type SyncTables, type TableSync } from './sync-query-client.js';
export { liveQueryOptions, type LiveQueryConfig } from './live-query-options.js';
