/**
 * The collector's public entry points, gathered from src/compose/ so that importers need one
 * path: the wiring (build-services), the listeners, and the lifecycle (start-collector).
 */
export { VERSION } from './compose/version.js';
export { databaseFile, socketFile } from './compose/data-files.js';
export { buildServices, type BuildOptions } from './compose/build-services.js';
export { createRequestHandler, createTcpServer } from './compose/listeners.js';
export { startCollector, type RunningCollector } from './compose/start-collector.js';
