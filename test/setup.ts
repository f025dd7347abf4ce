import { afterAll } from 'vitest';
import { removeTempDirs } from './helpers/temp.js';

// Registered before any test file's own hooks, so it runs after them (hooks unwind as a stack):
// a file's servers have stopped by the time its temp folders go.
afterAll(removeTempDirs);
