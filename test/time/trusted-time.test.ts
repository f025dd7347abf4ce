import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { DAY_MS, ManualClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function open(dir: string, clock: ManualClock) {
  return buildServices(loadConfig({ env: {}, overrides: { dataDir: dir } }), { clock, logger: createLogger('error', true) });
}

describe('the trusted-time floor', () => {
  it('when the collector restarts with its clock set back, then it still knows the later time and alerts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-time-'));
    dirs.push(dir);
    const clock = new ManualClock(Date.UTC(2027, 5, 1));
    const first = open(dir, clock);
    const token = first.tokens.create({ vaId: 'Default', description: 'short', expiresInDays: 1 }, 'test');
    clock.advance(3 * DAY_MS);
    first.time.check();
    first.db.close();

    clock.advance(-5 * DAY_MS); // the host comes back with its clock two days before the token's creation
    const second = open(dir, clock);
    second.evaluateAlerts();
    expect(second.alerts.list({ open: true, kind: 'clock_backwards', limit: 10 }).items).toHaveLength(1);
    expect(second.time.now()).toBe(Date.UTC(2027, 5, 4));
    expect(second.tokens.list().find((t) => t.id === token.id)!.state).toBe('expired');
    expect(second.events.list({ type: 'time.clock_backwards', limit: 10 }).items).toHaveLength(1);
    second.db.close();
  });
});
