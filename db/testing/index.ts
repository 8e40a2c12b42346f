// The test kit's public surface: a database per file, the leak guard, waiting (sleep, until, changes), and the orders
// table with its writers.
export { createTestDatabase, useTestDatabase, type TestDatabase } from './database.js';
export { leakGuard, registerLeakProbe, trackClient } from './leaks.js';
export { withDatabase } from './global-setup.js';
export { changes, passes, sleep, until } from './wait.js';
export { createOrders, createTenantTable, EXAMPLE_COLUMNS, insertOrder, keepWriting, writeOrders } from './orders.js';
