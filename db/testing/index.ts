// The test harness's public surface: a database per file and the leak guard.
export { createTestDatabase, useTestDatabase, type TestDatabase } from './database.js';
export { checkLeaks, leakBaseline, leakGuard, registerLeakProbe, trackClient, type LeakBaseline } from './leaks.js';
export { withDatabase } from './global-setup.js';
export { selectBackend, startBackend, type TestBackend, type BackendKind } from './backend.js';
