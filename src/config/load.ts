import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema, type Config } from './schema.js';
import { assertReadableFile } from '../shared/files.js';
import { AppError } from '../shared/errors.js';

/** The package root, found from this file in src/ or dist/ alike. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export class ConfigError extends Error {
  /** A stable code where the cause has one (file_not_found, permission_denied, not_a_file). */
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

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

function readJson(file: string, named = false): Obj {
  let text: string;
  try {
    if (named) assertReadableFile(file, 'config file');
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof AppError) throw new ConfigError(`${e.message}, named by --config or OUTPOST_CONFIG`, e.code);
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
  /** Told of each OUTPOST_* variable that sets nothing (a misspelling would otherwise be silently ignored). */
  onWarning?: (message: string) => void;
}

/** Variables read besides the configuration's own keys. */
const OTHER_VARIABLES = ['OUTPOST_CONFIG', 'OUTPOST_DEVICE_PASSWORD', 'OUTPOST_CSSM_CLIENT_SECRET', 'OUTPOST_USER_PASSWORD'];

/** Edit distance counting a swap of two neighbours as one edit (PROT for PORT). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** Every OUTPOST_* variable Outpost reads. */
export function knownVariables(): string[] {
  return [...OTHER_VARIABLES, ...leafPaths(readJson(resolve(packageRoot, 'config/default.json'))).map(envName)];
}

/** One warning per OUTPOST_* variable in env that sets nothing, with the nearest known name when one is close. */
export function unknownVariableWarnings(env: NodeJS.ProcessEnv, known = knownVariables()): string[] {
  return Object.keys(env)
    .filter((k) => k.startsWith('OUTPOST_') && !known.includes(k))
    .sort()
    .map((k) => {
      const best = known.map((n) => ({ n, d: distance(k, n) })).sort((x, y) => x.d - y.d)[0];
      return best && best.d <= Math.max(2, Math.floor(k.length / 5))
        ? `unknown variable ${k} is ignored: did you mean ${best.n}?`
        : `unknown variable ${k} is ignored: the variables are the keys of config/default.json, spelled as OUTPOST_SECTION_KEY`;
    });
}

/**
 * Defaults from config/default.json, then the config file (option, or OUTPOST_CONFIG), then
 * OUTPOST_* variables, then explicit overrides. A bad value stops start-up naming the key.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const defaults = readJson(resolve(packageRoot, 'config/default.json'));
  if (opts.onWarning) {
    for (const w of unknownVariableWarnings(env, [...OTHER_VARIABLES, ...leafPaths(defaults).map(envName)])) opts.onWarning(w);
  }
  const file = opts.file ?? env.OUTPOST_CONFIG;
  let merged = defaults;
  if (file) merged = merge(merged, readJson(resolve(file), true));
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
    backup: { ...c.backup, dir: resolve(c.backup.dir || join(c.dataDir, 'backups')) },
  };
}
