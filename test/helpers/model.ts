import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import fc from 'fast-check';
import { DAY, startHarness, TAG, TAG2, type Harness } from './harness.js';
import { enroll, startUpstream, type Upstream } from './exchange.js';
import { rumElement, smartLicense } from './rum.js';
import { DelayedVerifier } from './verifiers.js';
import { countViolations } from './invariants.js';
import { ManualClock } from '../../src/shared/clock.js';
import type { SignatureVerifier } from '../../src/device-api/verifier.js';
import type { SimulatedDevice } from '../../src/simulator/device-client.js';
import type { DeviceReport } from '../../src/usage/report-schema.js';

/*
 * A model-based test of the counts: random programs of device and operator actions, run in
 * rounds whose actions are issued concurrently (each after its own small delay), through the
 * real HTTP server, the real SQLite store and the production signature pool (each check
 * answering after a drawn delay). After the program, the count invariants are read from
 * SQLite (test/helpers/invariants.ts) and every answer the server gave is checked against
 * what it stored.
 */

/** Devices with keys (they register, report, move, deregister). */
export const DEVICES = 2;
/** UDIs known only from RUM files. */
const RUM_ONLY = 2;
const TAGS = [TAG, TAG2] as const;
/** Small on purpose: the stale age is crossed by a clock step of two days, not months. */
const STALE_AFTER_DAYS = 1;
const HOUR = 3600;

const measured = fc.record({ tag: fc.integer({ min: 0, max: 1 }), count: fc.integer({ min: 0, max: 9 }), ageHours: fc.integer({ min: 0, max: 12 }) });
export type Measured = { tag: number; count: number; ageHours: number };

export type Op =
  | { kind: 'register'; dev: number }
  | { kind: 'report'; dev: number; m: Measured }
  | { kind: 'batch'; dev: number; ms: Measured[]; repeat: 'none' | 'duplicate' | 'reused' }
  | { kind: 'duplicate'; dev: number; pick: number }
  | { kind: 'reuse'; dev: number; pick: number; count: number }
  | { kind: 'move'; dev: number; va: number }
  | { kind: 'deregister'; dev: number }
  | { kind: 'stale'; via: 'route' | 'service' }
  | { kind: 'rum'; va: number; items: { unit: number; rid: number; len: number }[] }
  | { kind: 'exchange' };

export interface Step {
  op: Op;
  /** ms before the action is issued, so that actions of one round interleave differently */
  delay: number;
}

export interface Program {
  rounds: Step[][];
  /** ms each signature check waits before answering, drawn in turn */
  verifyDelays: number[];
}

const dev = fc.integer({ min: 0, max: DEVICES - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('register' as const), dev }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('report' as const), dev, m: measured }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('batch' as const), dev, ms: fc.array(measured, { minLength: 1, maxLength: 4 }),
      repeat: fc.constantFrom('none' as const, 'none' as const, 'duplicate' as const, 'reused' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), dev, pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('reuse' as const), dev, pick: fc.nat(20), count: fc.integer({ min: 1, max: 9 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('move' as const), dev, va: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('deregister' as const), dev }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stale' as const), via: fc.constantFrom('route' as const, 'service' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('rum' as const), va: fc.integer({ min: 0, max: 1 }),
      items: fc.array(
        fc.record({ unit: fc.integer({ min: 0, max: DEVICES + RUM_ONLY - 1 }), rid: fc.integer({ min: 1, max: 3 }), len: fc.integer({ min: 1, max: 3 }) }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exchange' as const) }) },
);

const stepArb = fc.record({ op: opArb, delay: fc.integer({ min: 0, max: 5 }) });

export function programArb(o: { maxRounds?: number } = {}): fc.Arbitrary<Program> {
  return fc.record({
    // Every program starts by registering some devices: most actions need one.
    rounds: fc
      .tuple(
        fc.array(fc.record({ op: fc.record({ kind: fc.constant('register' as const), dev }), delay: fc.constant(0) }), { minLength: 1, maxLength: DEVICES }),
        fc.array(fc.array(stepArb, { minLength: 2, maxLength: 5 }), { minLength: 3, maxLength: o.maxRounds ?? 12, size: 'medium' }),
      )
      .map(([first, rest]) => [first, ...rest]),
    verifyDelays: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 16 }),
  });
}

interface Sent {
  dev: number;
  deviceId: string;
  reports: DeviceReport[];
  batch: boolean;
  status: number;
  body: any;
}

/** How often each action got each answer, over all runs of this process: what the runs exercised. */
export const outcomes = new Map<string, number>();
const tally = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs one program against a fresh collector and returns what went wrong: broken invariants,
 * answers that disagree with the store, unexpected statuses. Empty means the run was clean.
 */
export async function runProgram(program: Program, pool: SignatureVerifier): Promise<string[]> {
  const clock = new ManualClock(Date.now());
  let draw = 0;
  const delayed = (v: SignatureVerifier) => new DelayedVerifier(v, () => program.verifyDelays[draw++ % program.verifyDelays.length]!);
  const h = await startHarness({ clock, verifier: pool, wrapVerifier: delayed, config: { device: { staleAfterDays: STALE_AFTER_DAYS } } });
  let up: Upstream | undefined;
  try {
    return await execute(h, clock, program, () => (up ??= startUpstream(join(h.dir, 'upstream'))));
  } finally {
    up?.close();
    await h.close();
  }
}

async function execute(h: Harness, clock: ManualClock, program: Program, upstream: () => Upstream): Promise<string[]> {
  const problems: string[] = [];
  const vas = [h.defaultVa, (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Branch' }).expect(201)).body.id as string];
  const devices: SimulatedDevice[] = Array.from({ length: DEVICES }, () => h.device());
  const rumUnits = [...devices.map((d) => d.udi), ...Array.from({ length: RUM_ONLY }, (_, i) => ({ pid: 'C9300-48P', serial: `RUM${process.pid}X${i}X${Date.now()}` }))];
  const startSec = Math.floor(clock.now() / 1000);
  const sent: Sent[] = [];
  const history: DeviceReport[][] = devices.map(() => []);
  let nextReport = 0;
  let enrolled = false;
  let exchanging: Promise<void> = Promise.resolve();

  // For the device-usage check: the highest report pk when a device was deregistered. Read in
  // the same synchronous turn as the deregistration commits, so no report commit falls between.
  const floors = new Map<string, number>();
  const svc = h.services.devices;
  const deregister = svc.deregister.bind(svc);
  svc.deregister = (id, actor) => {
    const out = deregister(id, actor);
    floors.set(id, h.count('SELECT coalesce(max(id), 0) FROM reports'));
    return out;
  };

  const expect = (what: string, status: number, allowed: number[], body: unknown) => {
    tally(`${what.split(' ')[0]} ${status}`);
    if (!allowed.includes(status)) problems.push(`${what}: unexpected ${status} ${JSON.stringify(body).slice(0, 300)}`);
  };
  const nowSec = () => Math.floor(clock.now() / 1000);
  const newReport = (d: number, ms: Measured[]): DeviceReport => {
    const now = nowSec();
    return {
      reportId: `d${d}-r${++nextReport}`, seq: nextReport, generatedAt: now,
      measurements: ms.map((m) => ({ tag: TAGS[m.tag]!, count: m.count, start: now - m.ageHours * HOUR - HOUR, end: now - m.ageHours * HOUR })),
    };
  };
  const send = async (d: number, reports: DeviceReport[], batch: boolean) => {
    const device = devices[d]!;
    if (!device.deviceId) return;
    for (const r of reports) history[d]!.push(r);
    const res = batch ? await device.sendBatch(reports) : await device.sendReport(reports[0]!);
    sent.push({ dev: d, deviceId: device.deviceId, reports, batch, status: res.status, body: res.body });
    tally(`${batch ? 'batch' : 'report'} ${res.status}${res.status === 200 ? '' : ` ${res.body?.error?.code}`}`);
  };
  // A RUM unit's report `rid` always holds the same measurements; a longer copy extends a shorter one.
  const rumMeasurements = (unit: number, rid: number, len: number) =>
    Array.from({ length: len }, (_, i) => {
      const end = startSec - (4 - rid) * 6 * HOUR + i * HOUR;
      return { start: end - HOUR, end, count: (unit * 3 + rid * 5 + i * 7) % 10 };
    });

  async function run(op: Op): Promise<void> {
    switch (op.kind) {
      case 'register': {
        const d = devices[op.dev]!;
        const r = await d.register(await h.token());
        // 401 timestamp_stale: signed just before a stale evaluation stepped the clock.
        if (r.status === 401 && r.body?.error?.code === 'timestamp_stale') return;
        expect(`register ${op.dev}`, r.status, [200, 201, 202], r.body);
        if (r.status === 202) {
          // A deregistered device coming back waits for an operator; here the operator approves.
          if (r.body.status !== 'pending_approval') problems.push(`register ${op.dev}: 202 ${JSON.stringify(r.body)}`);
          const a = await h.api.post(`/api/v1/devices/${r.body.deviceId}/rekey/approve`);
          expect(`approve ${op.dev}`, a.status, [200, 409], a.body);
          d.deviceId = r.body.deviceId;
        }
        return;
      }
      case 'report':
        return send(op.dev, [newReport(op.dev, [op.m])], false);
      case 'batch': {
        const reports = op.ms.map((m) => newReport(op.dev, [m]));
        const first = reports[0]!;
        if (op.repeat === 'duplicate') reports.push(first);
        if (op.repeat === 'reused') reports.push({ ...first, measurements: first.measurements.map((m) => ({ ...m, count: m.count + 1 })) });
        return send(op.dev, reports, true);
      }
      case 'duplicate': {
        const past = history[op.dev]!;
        if (past.length) await send(op.dev, [past[op.pick % past.length]!], false);
        return;
      }
      case 'reuse': {
        const past = history[op.dev]!;
        if (!past.length) return;
        const orig = past[op.pick % past.length]!;
        const changed = { ...orig, measurements: orig.measurements.map((m) => ({ ...m, count: m.count + op.count })) };
        return send(op.dev, [changed], false);
      }
      case 'move': {
        const id = devices[op.dev]!.deviceId;
        if (!id) return;
        const r = await h.api.post(`/api/v1/devices/${id}/move`).send({ vaId: vas[op.va] });
        expect(`move ${op.dev}`, r.status, [200, 409], r.body);
        return;
      }
      case 'deregister': {
        const id = devices[op.dev]!.deviceId;
        if (!id) return;
        const r = await h.api.post(`/api/v1/devices/${id}/deregister`);
        expect(`deregister ${op.dev}`, r.status, [200, 409], r.body);
        return;
      }
      case 'stale': {
        // Signatures are checked against the same clock, so devices keep signing "now".
        clock.advance((STALE_AFTER_DAYS + 1) * DAY);
        if (op.via === 'service') tally(`stale ${(await h.services.devices.evaluate()).staled}`);
        else expect('evaluate', (await h.api.post('/api/v1/alerts/evaluate')).status, [200], null);
        return;
      }
      case 'rum': {
        const xml = smartLicense(
          ...op.items.map((it) => rumElement({ ...rumUnits[it.unit]!, reportId: it.rid, tag: TAGS[it.rid % 2]!, measurements: rumMeasurements(it.unit, it.rid, it.len) })),
        );
        const r = await h.api.post(`/api/v1/usage/rum?vaId=${vas[op.va]}&skipInvalid=true`).set('content-type', 'application/xml').send(xml);
        // 400: every element was refused (their devices are deregistered).
        expect('rum import', r.status, [200, 400], r.body);
        return;
      }
      case 'exchange': {
        // One exchange at a time, as an operator carries bundles; device traffic goes on meanwhile.
        const prev = exchanging;
        let done!: () => void;
        exchanging = new Promise((r) => (done = r));
        await prev;
        try {
          const u = upstream();
          if (!enrolled) {
            await enroll(h, u);
            enrolled = true;
          }
          const exp = await h.api.post('/api/v1/exchange/export').send({});
          expect('export', exp.status, [200], exp.body);
          if (exp.status !== 200) return;
          const processed = await u.process(exp.body.file);
          const imp = await h.api.post('/api/v1/exchange/import').send({ file: processed.responseFile });
          expect('response import', imp.status, [200], imp.body);
        } finally {
          done();
        }
        return;
      }
    }
  }

  for (const round of program.rounds) {
    await Promise.all(
      round.map(async (s) => {
        if (s.delay) await sleep(s.delay);
        try {
          await run(s.op);
        } catch (e) {
          problems.push(`${s.op.kind}: threw ${(e as Error).stack ?? e}`);
        }
      }),
    );
  }
  await exchanging;

  problems.push(...countViolations(h.services.db, floors));
  problems.push(...checkAnswers(h, sent));
  return problems;
}

/** Every answer against the store: what was acknowledged is stored as sent; nothing else is. */
function checkAnswers(h: Harness, sent: Sent[]): string[] {
  const out: string[] = [];
  const storedBody = h.services.db.prepare("SELECT body FROM reports WHERE device_id = ? AND source = 'device' AND report_id = ?");
  const stored = (deviceId: string, reportId: string) => {
    const row = storedBody.get(deviceId, reportId) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as DeviceReport) : undefined;
  };
  const accepted = new Map<string, number>();
  const acked = new Map<string, DeviceReport[]>();
  for (const s of sent) {
    const what = `${s.batch ? 'batch' : 'report'} of device ${s.dev} [${s.reports.map((r) => r.reportId).join(', ')}]`;
    if (s.status === 200) {
      const statuses: string[] = s.batch ? s.body.results.map((r: { status: string }) => r.status) : [s.body.status];
      s.reports.forEach((r, i) => {
        const st = statuses[i];
        if (st !== 'accepted' && st !== 'duplicate') out.push(`${what}: ${r.reportId} answered ${st}`);
        const key = `${s.deviceId}\u0000${r.reportId}`;
        acked.set(key, [...(acked.get(key) ?? []), r]);
        if (st === 'accepted') accepted.set(key, (accepted.get(key) ?? 0) + 1);
        const got = stored(s.deviceId, r.reportId);
        if (!got) out.push(`${what}: ${r.reportId} answered ${st} but is not stored`);
        else if (!isDeepStrictEqual(got, r)) out.push(`${what}: ${r.reportId} answered ${st} but the store holds other content`);
      });
    } else if (s.status === 409) {
      if (s.body?.error?.code !== 'report_id_reused') out.push(`${what}: 409 ${JSON.stringify(s.body)}`);
    } else if (s.status === 401) {
      // Refused: deregistered since (unknown_device), or signed before a clock step (timestamp_stale).
      if (!['unknown_device', 'timestamp_stale'].includes(s.body?.error?.code)) out.push(`${what}: 401 ${JSON.stringify(s.body)}`);
    } else {
      out.push(`${what}: unexpected ${s.status} ${JSON.stringify(s.body).slice(0, 300)}`);
    }
  }
  for (const [key, n] of accepted) if (n > 1) out.push(`report ${key.replace('\u0000', ' / ')} was answered "accepted" ${n} times`);
  // Nothing stored that was not acknowledged: a refused request (401, 409) writes nothing.
  const rows = h.services.db.prepare("SELECT device_id, report_id, body FROM reports WHERE source = 'device'").all() as { device_id: string; report_id: string; body: string }[];
  for (const r of rows) {
    const body = JSON.parse(r.body) as DeviceReport;
    if (!(acked.get(`${r.device_id}\u0000${r.report_id}`) ?? []).some((a) => isDeepStrictEqual(a, body))) {
      out.push(`report ${r.device_id} / ${r.report_id} is stored but no request carrying it was acknowledged`);
    }
  }
  return out;
}
