import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startSite, type Site } from '../helpers/exchange.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { cli, envFor } from '../helpers/processes.js';
import { readManifest } from '../../src/exchange/read.js';
import { operations } from '../../src/upstream/server/operations.js';
import { chainText, GENESIS } from '../../src/events/service.js';
import { sha256hex } from '../../src/shared/hash.js';
import { databaseFile } from '../../src/main.js';

let site: Site | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await site?.close();
  await h?.close();
  site = h = undefined;
});

describe('checkpoints at the Outpost upstream', () => {
  it('when usage bundles carry checkpoints, then the upstream verifies and stores them, exports them, and the collector checks its trail against the export', async () => {
    site = await startSite();
    const { h: c, up } = site;
    await c.api.post('/api/v1/virtual-accounts').send({ name: 'Ops' }).expect(201);
    const first = await site.exportNow();
    const m1 = (await readManifest(first.file)).manifest;
    expect(m1.meta.eventCheckpoint).toMatchObject({ collectorId: c.services.identity.collectorId, keyId: c.services.identity.fingerprint });
    expect((await up.process(first.file)).checkpoint).toMatchObject({ status: 'stored' });
    await c.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201);
    const victim = c.services.events.head().id;
    const second = await site.exportNow();
    expect((await up.process(second.file)).checkpoint).toMatchObject({ status: 'stored' });

    const file = join(c.dir, 'from-upstream.jsonl');
    const r = await operations(up.service).checkpointsExport({ collector: c.services.identity.collectorId, file });
    expect(r.checkpoints).toBe(2);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.kind, l.eventId])).toEqual([['checkpoint', (m1.meta.eventCheckpoint as { eventId: number }).eventId], ['checkpoint', victim]]);
    expect((await c.api.post('/api/v1/events/verify').send({ checkpoints: file })).body).toMatchObject({ intact: true, checkpoints: { checked: 2, matched: 2 } });

    // The trail rewritten on the site, local checkpoints and all: the upstream's copies still tell.
    const db = new Database(databaseFile(c.config));
    db.transaction(() => {
      db.prepare(`UPDATE events SET details = '{"name":"Other"}' WHERE id = ?`).run(victim);
      db.prepare('DELETE FROM event_checkpoints').run();
      let prev = GENESIS;
      for (const row of db.prepare('SELECT * FROM events ORDER BY id').all() as never[]) {
        const hash = sha256hex(chainText(prev, row));
        db.prepare('UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?').run(prev, hash, (row as { id: number }).id);
        prev = hash;
      }
    })();
    db.close();
    expect((await c.api.get('/api/v1/events/verify')).body.intact).toBe(true);
    const found = (await c.api.post('/api/v1/events/verify').send({ checkpoints: file })).body;
    expect(found.finding).toMatchObject({ kind: 'changed', range: { to: victim } });
    expect(found.finding.range.from).toBeGreaterThan((m1.meta.eventCheckpoint as { eventId: number }).eventId);

    const other = await operations(up.service).checkpointsExport({ collector: 'col_00000000-0000-0000-0000-000000000000', file: join(c.dir, 'x.jsonl') }).catch((e) => e);
    expect(other.code).toBe('unknown_collector');
  });

  it('when the command exports them, then it writes the file; a file that exists is kept', async () => {
    site = await startSite();
    await site.up.process((await site.exportNow()).file);
    site.up.close();
    const env = envFor(site.h.config.dataDir);
    const out = join(site.h.dir, 'cps.jsonl');
    const args = ['upstream', 'checkpoints', 'export', '--collector', site.h.services.identity.collectorId, '--out', out];
    const r = await cli(args, env);
    expect([r.code, r.stdout]).toEqual([0, expect.stringContaining(`1 checkpoint(s) of collector ${site.h.services.identity.collectorId} written to ${out}`)]);
    const again = await cli(args, env);
    expect([again.code, again.stderr]).toEqual([1, expect.stringContaining('(file_exists)')]);
    site.up.close = () => {}; // closed above
  });

  it('when the upstream is Cisco\'s, then no checkpoint leaves the site: it is kept locally only', async () => {
    h = await startHarness({ config: { exchange: { upstream: { kind: 'cisco' } } } });
    await h.api.post('/api/v1/virtual-accounts').send({ name: 'Ops' }).expect(201);
    const r = await h.api.post('/api/v1/exchange/export').send({ period: '2026-11' });
    expect(r.status).toBe(200);
    expect((await readManifest(r.body.file)).manifest.meta.eventCheckpoint).toBeUndefined();
    expect(h.services.checkpoints.latest()).toMatchObject({ eventId: expect.any(Number) });
    expect(h.services.checkpoints.latest()!.eventId).toBeLessThan(h.services.events.head().id);
  });
});
