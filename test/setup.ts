import { afterAll, beforeEach } from 'vitest';
import { checkSecrets, setCurrentTest } from './helpers/secrets.js';
import { removeTempDirs } from './helpers/temp.js';

// Registered before any test file's own hooks, so it runs after them (hooks unwind as a stack):
// a file's servers have stopped by the time its temp folders go.
afterAll(removeTempDirs);
// Registered after removeTempDirs, so it runs before it: the keys in the file's data folders are still there to record.
// It fails the file if a secret the file made appears in a log line, a server's output or an answer that did not create it.
afterAll(checkSecrets);
beforeEach((ctx) => setCurrentTest(ctx.task.name));
