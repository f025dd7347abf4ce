import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/load.js';
import { AppError } from '../shared/errors.js';

/**
 * The console's files as the build leaves them in dist/console. Named here one by one, so that
 * the route table declares each of them and a test holds the build to this list.
 */
export const CONSOLE_FILES = {
  'main.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'session.js': 'text/javascript; charset=utf-8',
  'format.js': 'text/javascript; charset=utf-8',
  'pager.js': 'text/javascript; charset=utf-8',
  'act.js': 'text/javascript; charset=utf-8',
  'pages/login.js': 'text/javascript; charset=utf-8',
  'pages/overview.js': 'text/javascript; charset=utf-8',
  'pages/tokens.js': 'text/javascript; charset=utf-8',
  'pages/devices.js': 'text/javascript; charset=utf-8',
  'pages/device.js': 'text/javascript; charset=utf-8',
  'pages/device-tables.js': 'text/javascript; charset=utf-8',
  'pages/licenses.js': 'text/javascript; charset=utf-8',
  'pages/usage-chart.js': 'text/javascript; charset=utf-8',
  'pages/exchange.js': 'text/javascript; charset=utf-8',
  'pages/exchange-calls.js': 'text/javascript; charset=utf-8',
  'pages/exchange-syncs.js': 'text/javascript; charset=utf-8',
  'pages/exchange-operate.js': 'text/javascript; charset=utf-8',
  'types.js': 'text/javascript; charset=utf-8',
  'pages/events.js': 'text/javascript; charset=utf-8',
  'pages/trail-panel.js': 'text/javascript; charset=utf-8',
  'pages/users.js': 'text/javascript; charset=utf-8',
  'secret-panel.js': 'text/javascript; charset=utf-8',
  'pages/access.js': 'text/javascript; charset=utf-8',
  'pages/transfers.js': 'text/javascript; charset=utf-8',
  'pages/transfers-form.js': 'text/javascript; charset=utf-8',
  'pages/transfers-settle.js': 'text/javascript; charset=utf-8',
  'pages/notifications.js': 'text/javascript; charset=utf-8',
  'pages/notifications-sinks.js': 'text/javascript; charset=utf-8',
  'pages/notifications-fields.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
} as const;

export type ConsoleFile = keyof typeof CONSOLE_FILES;

export interface ConsoleBuild {
  /** A hash of every file: part of each asset's path, so a new build never meets an old cache. */
  id: string;
  html: string;
  files: Map<ConsoleFile, Buffer>;
}

export const consoleDir = () => join(packageRoot, 'dist', 'console');

let loaded: ConsoleBuild | undefined;

/** Read once, on the first request that needs it: the files do not change under a running collector. */
export function consoleBuild(dir = consoleDir()): ConsoleBuild {
  if (loaded) return loaded;
  const files = new Map<ConsoleFile, Buffer>();
  const hash = createHash('sha256');
  let template: string;
  try {
    for (const name of Object.keys(CONSOLE_FILES) as ConsoleFile[]) {
      const bytes = readFileSync(join(dir, name));
      files.set(name, bytes);
      hash.update(name).update('\0').update(bytes);
    }
    template = readFileSync(join(dir, 'index.html'), 'utf8');
    hash.update(template);
  } catch (e) {
    throw new AppError(503, 'console_not_built', `the operator console is not built (${(e as Error).message}): run npm run build`);
  }
  const id = hash.digest('hex').slice(0, 16);
  loaded = { id, html: template.replaceAll('{{build}}', id), files };
  return loaded;
}
