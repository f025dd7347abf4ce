import { z } from 'zod';
import { pathText } from '../shared/validation.js';

/**
 * What the RUM format promises, and no more: real devices write fields this does not name
 * (utility_enabled, termination_reason...), and log_time before start_time, so objects are
 * loose and only the fields Outpost uses are checked.
 */
const sudi = z.looseObject({ udi_pid: z.string().min(1).max(64), udi_serial_number: z.string().min(1).max(64) });
/** Measurements one RUM report may hold. */
export const MAX_MEASUREMENTS = 10_000;
const unixSeconds = z.number().int().nonnegative();

const measurement = z
  .looseObject({
    log_time: z.number().optional(),
    metric_name: z.literal('ENTITLEMENT'),
    start_time: unixSeconds,
    end_time: unixSeconds,
    value: z.looseObject({ type: z.literal('COUNT'), value: z.string().regex(/^\d{1,10}$/, 'a count: a non-negative integer as a string') }),
  })
  .refine((m) => m.end_time >= m.start_time, { message: 'end_time is before start_time', path: ['end_time'] });

const payload = z.looseObject({
  version: z.string(),
  asset_identification: z.looseObject({
    report_id: z.union([z.number().int().nonnegative(), z.string().min(1).max(64)]),
    asset: z.looseObject({ name: z.string() }),
    instance: z.looseObject({ sudi }),
  }),
  meta: z.looseObject({
    entitlement_tag: z.string().min(1).max(256),
    software_version: z.string().optional(),
    ha_udi: z.array(z.looseObject({ role: z.string().optional(), sudi })).optional(),
  }),
  // Bounded: a real report holds one measurement per sampling period (hundreds); 200,000 once overflowed the stack.
  measurements: z.array(measurement).min(1).max(MAX_MEASUREMENTS),
});

const envelope = z.looseObject({
  payload: z.string(),
  signature: z.looseObject({ signing_type: z.string(), value: z.string(), key: z.string().optional(), sudi: sudi.optional() }),
});

export interface RumReport {
  udi: { pid: string; serial: string };
  haUdis: { pid: string; serial: string }[];
  reportId: string;
  tag: string;
  softwareVersion: string;
  measurements: { start: number; end: number; count: number }[];
}

/** Parses the JSON inside one RUMReport element, or returns the reason it is not a RUM report. */
export function parseRumReport(json: string): RumReport | { reason: string } {
  let outer: unknown;
  let inner: unknown;
  try {
    outer = JSON.parse(json);
  } catch (e) {
    return { reason: `not JSON: ${(e as Error).message}` };
  }
  const env = envelope.safeParse(outer);
  if (!env.success) return { reason: firstIssue(env.error) };
  try {
    inner = JSON.parse(env.data.payload);
  } catch (e) {
    return { reason: `payload is not JSON: ${(e as Error).message}` };
  }
  const p = payload.safeParse(inner);
  if (!p.success) return { reason: 'payload.' + firstIssue(p.error) };
  const a = p.data.asset_identification;
  const udi = { pid: a.instance.sudi.udi_pid, serial: a.instance.sudi.udi_serial_number };
  return {
    udi,
    haUdis: (p.data.meta.ha_udi ?? []).map((h) => ({ pid: h.sudi.udi_pid, serial: h.sudi.udi_serial_number })),
    reportId: String(a.report_id),
    tag: p.data.meta.entitlement_tag,
    softwareVersion: p.data.meta.software_version ?? '',
    measurements: p.data.measurements.map((m) => ({ start: m.start_time, end: m.end_time, count: Number(m.value.value) })),
  };
}

function firstIssue(e: z.ZodError): string {
  const i = e.issues[0]!;
  return `${pathText(i.path) || '(root)'}: ${i.message}`;
}
