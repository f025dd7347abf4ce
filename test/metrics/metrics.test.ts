import { afterEach, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { parsePrometheus, valueOf, type Family } from '../helpers/prometheus.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function scrape(x: Harness): Promise<Map<string, Family>> {
  const res = await x.api.get('/metrics').expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
  return parsePrometheus(res.text);
}

describe('GET /metrics', () => {
  it('when devices report, then the exposition parses and the counters and gauges move with them', async () => {
    const x = (h = await startHarness({ config: { cisco: { portal: true } } }));
    x.services.licenses.addLine({ vaId: x.defaultVa, tag: TAG, displayName: 'DNA', kind: 'subscription', quantity: 4, startsAt: Date.now() - DAY, endsAt: Date.now() + 30 * DAY }, 'test');
    const before = await scrape(x);
    const usage = { va_id: x.defaultVa, tag: TAG };
    expect(valueOf(before, 'outpost_reports_total', { status: 'accepted' }) ?? 0).toBe(0);
    expect(valueOf(before, 'outpost_license_in_use', usage)).toBe(0);
    expect(valueOf(before, 'outpost_license_owned', usage)).toBe(4);
    expect(valueOf(before, 'outpost_reports_unacknowledged', { destination: 'outpost' })).toBe(0);
    expect(valueOf(before, 'outpost_reports_unacknowledged', { destination: 'portal' })).toBe(0);
    expect(valueOf(before, 'outpost_reports_unacknowledged', { destination: 'cssm' })).toBeUndefined();
    // prom-client's process metrics, event-loop delay among them.
    expect(before.get('nodejs_eventloop_lag_p99_seconds')?.type).toBe('gauge');
    expect(before.get('process_cpu_seconds_total')?.type).toBe('counter');

    const a = await x.registered();
    const b = await x.registered();
    expect((await a.sendReport(a.report(TAG, 3))).body.status).toBe('accepted');
    const rep = b.report(TAG, 2);
    expect((await b.sendReport(rep)).body.status).toBe('accepted');
    expect((await b.sendReport(rep)).body.status).toBe('duplicate');

    const after = await scrape(x);
    expect(valueOf(after, 'outpost_reports_total', { status: 'accepted' })).toBe(2);
    expect(valueOf(after, 'outpost_reports_total', { status: 'duplicate' })).toBe(1);
    expect(valueOf(after, 'outpost_license_in_use', usage)).toBe(5);
    expect(valueOf(after, 'outpost_license_shortfall', usage)).toBe(1);
    expect(valueOf(after, 'outpost_license_tags', { status: 'shortage' })).toBe(1);
    expect(valueOf(after, 'outpost_alerts_open', { kind: 'shortage' })).toBe(1);
    expect(valueOf(after, 'outpost_reports_unacknowledged', { destination: 'outpost' })).toBe(2);
    // Signed device reports are for the Outpost upstream only: the portal's file carries RUM reports.
    expect(valueOf(after, 'outpost_reports_unacknowledged', { destination: 'portal' })).toBe(0);
    expect(valueOf(after, 'outpost_reports_unacknowledged_oldest_age_seconds', { destination: 'outpost' })).toBeGreaterThanOrEqual(0);
    // Three report requests, each timed; each group commit counted.
    expect(valueOf(after, 'outpost_device_request_duration_seconds_count', { route: '/device/v1/report', code: '200' })).toBe(3);
    expect(valueOf(after, 'outpost_group_commit_jobs_count')).toBeGreaterThanOrEqual(1);
    expect(valueOf(after, 'outpost_wal_fsync_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(after.get('outpost_device_request_duration_seconds')?.type).toBe('histogram');
    expect(valueOf(after, 'outpost_polled_devices', { state: 'ok' })).toBe(0);
    expect(valueOf(after, 'outpost_export_last_success_timestamp_seconds', { kind: 'bundle' })).toBe(0);

    // An export moves the export metrics; the bundle carries the waiting reports.
    await x.api.post('/api/v1/exchange/export').send({}).expect((r) => expect(r.status).toBeLessThan(300));
    const exported = await scrape(x);
    expect(valueOf(exported, 'outpost_export_attempts_total', { kind: 'bundle', outcome: 'success' })).toBe(1);
    expect(valueOf(exported, 'outpost_export_seconds_since_success', { kind: 'bundle' })).toBeGreaterThanOrEqual(0);
  });

  it('when requests are refused, then each reason is counted', async () => {
    const x = (h = await startHarness());
    const d = await x.registered();
    const stranger = x.device();
    stranger.deviceId = 'dev_nope';
    expect((await stranger.sendReport(stranger.report(TAG, 1))).status).toBe(401);
    expect((await d.send('POST', '/device/v1/report', JSON.stringify(d.report(TAG, 1)), d.deviceId, Math.floor(Date.now() / 1000) - 3600)).status).toBe(401);
    expect((await d.sendReport(d.report(TAG, 1, Math.floor(Date.now() / 1000) + 3600))).status).toBe(400);
    const reused = d.report(TAG, 1);
    expect((await d.sendReport(reused)).status).toBe(200);
    expect((await d.sendReport({ ...reused, measurements: [{ ...reused.measurements[0]!, count: 2 }] })).status).toBe(409);
    const m = await scrape(x);
    expect(valueOf(m, 'outpost_report_requests_refused_total', { reason: 'unknown_device' })).toBe(1);
    expect(valueOf(m, 'outpost_report_requests_refused_total', { reason: 'timestamp_stale' })).toBe(1);
    expect(valueOf(m, 'outpost_report_requests_refused_total', { reason: 'generated_in_future' })).toBe(1);
    expect(valueOf(m, 'outpost_report_requests_refused_total', { reason: 'report_id_reused' })).toBe(1);
    expect(valueOf(m, 'outpost_reports_total', { status: 'accepted' })).toBe(1);
  });

  it('when two collectors run in one process, then each counts its own', async () => {
    const x = (h = await startHarness());
    const y = await startHarness();
    try {
      const d = await x.registered();
      await d.sendReport(d.report(TAG, 1));
      expect(valueOf(await scrape(x), 'outpost_reports_total', { status: 'accepted' })).toBe(1);
      expect(valueOf(await scrape(y), 'outpost_reports_total', { status: 'accepted' }) ?? 0).toBe(0);
    } finally {
      await y.close();
    }
  });
});

describe('the text-format parser the tests use', () => {
  it('when the exposition breaks the grammar, then it refuses it', () => {
    expect(() => parsePrometheus('# TYPE a counter\na 1\n')).not.toThrow();
    expect(() => parsePrometheus('# TYPE a counter\na{x="1} 1\n')).toThrow(/malformed/);
    expect(() => parsePrometheus('# TYPE a counter\nb 1\n')).toThrow(/outside its family/);
    expect(() => parsePrometheus('# TYPE a counter\na one\n')).toThrow(/bad value/);
    expect(() => parsePrometheus('# TYPE a counter\na 1\na 2\n')).toThrow(/twice/);
    expect(() => parsePrometheus('# TYPE a histogram\na_bucket{le="1"} 2\na_bucket{le="+Inf"} 1\n')).toThrow(/cumulative/);
  });
});
