// Every Postgres advisory lock pgrelay takes, in one registry: two int4 keys, the first 7242 for pgrelay.
// The SQL of migrations/1796400000002_render.sql takes RENDER_LOCK itself (a test checks it against this file).

/** Held by the ticker's leader for the life of its session (db/ticker/). */
export const TICKER_LOCK = [7242, 3] as const;
/** Taken by one relay at a time while it prunes the log (relay/ops/pruner.ts). */
export const PRUNE_LOCK = [7242, 2] as const;
/** Taken by relay._build_render for the length of its transaction (migrations/1796400000002_render.sql). */
export const RENDER_LOCK = [7242, 4] as const;
