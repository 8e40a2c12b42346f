// The test kit's public surface: a database per file, the leak guard, waiting (sleep, until, changes), and the orders
// table with its writers.
export { createTestDatabase, useTestDatabase, type TestDatabase } from './database.js';
export { checkLeaks, leakBaseline, leakGuard, registerLeakProbe, trackClient, type LeakBaseline } from './leaks.js';
export { withDatabase } from './global-setup.js';
export { changes, passes, sleep, until, type Changes, type UntilOptions } from './wait.js';
export { createOrders, createTenantTable, EXAMPLE_COLUMNS, insertOrder, keepWriting, tenantTableSql, writeOrders, type Sql, type TableShape, type Writer } from './orders.js';
export { selectBackend, startBackend, type TestBackend, type BackendKind } from './backend.js';
