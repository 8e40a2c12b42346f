// The test kit's public surface: a database per file, the leak guard, and waiting (sleep, until, changes).
export { createTestDatabase, useTestDatabase, type TestDatabase } from './database.js';
export { checkLeaks, leakBaseline, leakGuard, registerLeakProbe, trackClient, type LeakBaseline } from './leaks.js';
export { withDatabase } from './global-setup.js';
export { changes, passes, sleep, until, type Changes, type UntilOptions } from './wait.js';
export { selectBackend, startBackend, type TestBackend, type BackendKind } from './backend.js';
