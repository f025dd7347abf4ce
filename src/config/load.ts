import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema, type Config } from './schema.js';

/** The package root, found from this file in src/ or dist/ alike. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export class ConfigError extends Error {}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function merge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObj(b) && isObj(v) ? merge(b, v) : v;
  }
  return out;
}

/** camelCase path → OUTPOST_SNAKE_CASE, e.g. device.staleAfterDays → OUTPOST_DEVICE_STALE_AFTER_DAYS. */
export function envName(path: string[]): string {
  return 'OUTPOST_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

function leafPaths(o: Obj, prefix: string[] = []): string[][] {
  return Object.entries(o).flatMap(([k, v]) => (isObj(v) ? leafPaths(v, [...prefix, k]) : [[...prefix, k]]));
}

function envOverrides(defaults: Obj, env: NodeJS.ProcessEnv): Obj {
  const out: Obj = {};
  for (const path of leafPaths(defaults)) {
    const raw = env[envName(path)];
    if (raw === undefined) continue;
    const sample = path.reduce<Json>((o, k) => (o as Obj)[k]!, defaults);
    let value: Json = raw;
    if (typeof sample === 'number') {
      const n = Number(raw);
      value = raw.trim() !== '' && Number.isFinite(n) ? n : raw; // let the schema name the bad value
    } else if (typeof sample === 'boolean') {
      value = raw === 'true' ? true : raw === 'false' ? false : raw;
    } else if (Array.isArray(sample)) {
      value = raw.split(',').map((v) => v.trim()).filter(Boolean); // a list: comma-separated
    }
    let cursor = out;
    for (const k of path.slice(0, -1)) cursor = (cursor[k] ??= {}) as Obj;
    cursor[path[path.length - 1]!] = value;
  }
  return out;
}

function readJson(file: string): Obj {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isObj(parsed)) throw new Error('the top level must be an object');
    return parsed;
  } catch (e) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  overrides?: Obj;
}

/**
 * Defaults from config/default.json, then the config file (option, or OUTPOST_CONFIG), then
 * OUTPOST_* variables, then explicit overrides. A bad value stops start-up naming the key.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const defaults = readJson(resolve(packageRoot, 'config/default.json'));
  const file = opts.file ?? env.OUTPOST_CONFIG;
  let merged = defaults;
  if (file) merged = merge(merged, readJson(resolve(file)));
  merged = merge(merged, envOverrides(defaults, env));
  if (opts.overrides) merged = merge(merged, opts.overrides);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const key = i.path.join('.');
      const env = i.path.length ? ` (${envName(i.path.map(String))})` : '';
      return `  ${key || '(top level)'}${env}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const c = result.data;
  return {
    ...c,
    dataDir: resolve(c.dataDir),
    exchange: { ...c.exchange, bundleDir: resolve(c.exchange.bundleDir) },
    upstream: { ...c.upstream, dataDir: resolve(c.upstream.dataDir) },
  };
}
