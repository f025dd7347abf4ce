import { badRequest } from '../shared/errors.js';

/**
 * The device report, checked by hand rather than by a schema library: this runs for every
 * report on the hot path, and a direct check costs about a fifth of a generic one. Every
 * refusal names the field (reports[3].measurements[0].count) and what was expected.
 */
export interface Measurement {
  tag: string;
  count: number;
  start: number;
  end: number;
}

export interface DeviceReport {
  reportId: string;
  seq: number;
  generatedAt: number;
  measurements: Measurement[];
}

export interface ReportLimits {
  maxReportsPerBatch: number;
  maxMeasurementsPerReport: number;
}

/** Unix seconds: what devices (and RUM reports) speak. Up to the year 3000. */
const MAX_UNIX = 32_503_680_000;
const REPORT_KEYS = new Set(['reportId', 'seq', 'generatedAt', 'measurements']);
const MEASUREMENT_KEYS = new Set(['tag', 'count', 'start', 'end']);
const PRINTABLE = /^[\x21-\x7e]+$/;

class Invalid extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function strictKeys(o: Record<string, unknown>, allowed: Set<string>, path: string): void {
  for (const k in o) if (!allowed.has(k)) throw new Invalid(path, `Unrecognized key: "${k}"`);
  for (const k of allowed) if (!(k in o)) throw new Invalid(path ? `${path}.${k}` : k, 'is required');
}

function int(v: unknown, path: string, what: string, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Invalid(path, `${what} must be a number`);
  if (!Number.isInteger(v)) throw new Invalid(path, `${what} must be an integer`);
  if (v < 0) throw new Invalid(path, `${what} must not be negative`);
  if (v > max) throw new Invalid(path, `${what} must be at most ${max}`);
  return v;
}

function measurement(v: unknown, path: string): Measurement {
  if (!isObject(v)) throw new Invalid(path, 'must be an object');
  strictKeys(v, MEASUREMENT_KEYS, path);
  const tag = v.tag;
  if (typeof tag !== 'string' || tag.length < 1 || tag.length > 256) throw new Invalid(`${path}.tag`, 'must be a string of 1 to 256 characters');
  const count = int(v.count, `${path}.count`, 'count', 1e9);
  const start = int(v.start, `${path}.start`, 'start', MAX_UNIX);
  const end = int(v.end, `${path}.end`, 'end', MAX_UNIX);
  if (end < start) throw new Invalid(`${path}.end`, 'the period ends before it starts');
  return { tag, count, start, end };
}

function report(v: unknown, path: string, limits: ReportLimits): DeviceReport {
  if (!isObject(v)) throw new Invalid(path || '(root)', 'must be an object');
  strictKeys(v, REPORT_KEYS, path);
  const p = (k: string) => (path ? `${path}.${k}` : k);
  const reportId = v.reportId;
  if (typeof reportId !== 'string' || reportId.length < 1 || reportId.length > 128 || !PRINTABLE.test(reportId)) {
    throw new Invalid(p('reportId'), 'must be 1 to 128 printable ASCII characters without spaces');
  }
  const seq = int(v.seq, p('seq'), 'seq', Number.MAX_SAFE_INTEGER);
  const generatedAt = int(v.generatedAt, p('generatedAt'), 'generatedAt', MAX_UNIX);
  const ms = v.measurements;
  if (!Array.isArray(ms) || ms.length < 1 || ms.length > limits.maxMeasurementsPerReport) {
    throw new Invalid(p('measurements'), `must be an array of 1 to ${limits.maxMeasurementsPerReport} measurements`);
  }
  return { reportId, seq, generatedAt, measurements: ms.map((m, i) => measurement(m, `${p('measurements')}[${i}]`)) };
}

function refuse(e: unknown, what: string): never {
  if (!(e instanceof Invalid)) throw e;
  const path = e.path || '(root)';
  throw badRequest(`invalid_${what}`, `${what}: ${path}: ${e.message}`, { issues: [{ path, message: e.message }] });
}

export function parseReport(body: unknown, limits: ReportLimits): DeviceReport {
  try {
    return report(body, '', limits);
  } catch (e) {
    refuse(e, 'report');
  }
}

export function parseBatch(body: unknown, limits: ReportLimits): DeviceReport[] {
  try {
    if (!isObject(body)) throw new Invalid('(root)', 'must be an object');
    strictKeys(body, new Set(['reports']), '');
    const list = body.reports;
    if (!Array.isArray(list) || list.length < 1 || list.length > limits.maxReportsPerBatch) {
      throw new Invalid('reports', `must be an array of 1 to ${limits.maxReportsPerBatch} reports`);
    }
    return list.map((r, i) => report(r, `reports[${i}]`, limits));
  } catch (e) {
    refuse(e, 'batch');
  }
}
