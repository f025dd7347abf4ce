import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';

let h: Harness;
let clock: ManualClock;
const T0 = Date.parse('2026-03-01T10:00:00Z');
const HOUR = 3_600_000;

beforeEach(async () => {
  clock = new ManualClock(T0);
  h = await startHarness({ clock });
  // Actors as the collector writes them: a user alone, through a session, through a token, and
  // another user whose name starts the same and one whose name differs only in case.
  const e = h.services.events;
  e.append('device.moved', 'user:ada', 'dev_1', null);
  clock.advance(HOUR);
  e.append('device.moved', 'user:ada (session ses_1)', 'dev_2', null);
  clock.advance(HOUR);
  e.append('user.token_created', 'token:tok_1 (user:ada)', 'tok_2', null);
  clock.advance(HOUR);
  e.append('device.moved', 'user:adam', 'dev_3', null);
  e.append('device.moved', 'user:Ada', 'dev_4', null);
  e.append('device.moved', 'user_ada', 'dev_5', null);
});
afterEach(() => h.close());

const subjects = async (qs: string) => {
  const r = await h.api.get(`/api/v1/events?${qs}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.items as { subject: string }[]).map((e) => e.subject).filter((s) => /^(dev|tok)_\d$/.test(s));
};

describe('the event list filtered by actor and time range', () => {
  it('when filtered by a user, then its own actions are listed, through a session or a token, and no other user\'s', async () => {
    expect(await subjects('actor=user:ada')).toEqual(['tok_2', 'dev_2', 'dev_1']);
    expect(await subjects('actor=user:adam')).toEqual(['dev_3']);
    expect(await subjects('actor=token:*')).toEqual(['tok_2']);
    // '_' and case are taken as written, as user names are.
    expect(await subjects('actor=user_ad*')).toEqual(['dev_5']);
    expect(await subjects('actor=user:Ada')).toEqual(['dev_4']);
    expect(await subjects('actor=user:ad*&type=device.*')).toEqual(['dev_3', 'dev_2', 'dev_1']);
  });

  it('when given a time range, then only events at or after since and before until are listed, in the CSV too', async () => {
    const at = (ms: number) => new Date(ms).toISOString();
    expect(await subjects(`since=${at(T0 + HOUR)}&until=${at(T0 + 3 * HOUR)}`)).toEqual(['tok_2', 'dev_2']);
    expect(await subjects(`until=${at(T0 + HOUR)}`)).toEqual(['dev_1']);
    const csv = await h.api.get(`/api/v1/events.csv?actor=user:ada&since=${at(T0 + HOUR)}&until=${at(T0 + 3 * HOUR)}`);
    expect(csv.status).toBe(200);
    const rows = csv.text.trim().split('\n').slice(1);
    expect(rows.map((l) => l.split(',')[4])).toEqual(['tok_2', 'dev_2']);
  });

  it('when the range ends before it starts, or a time is not one, then the request is refused naming the field', async () => {
    const r = await h.api.get(`/api/v1/events?since=${new Date(T0 + HOUR).toISOString()}&until=${new Date(T0).toISOString()}`);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toContain('since must be before until');
    const bad = await h.api.get('/api/v1/events.csv?until=yesterday');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('until');
  });
});
