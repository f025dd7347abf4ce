import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TAG } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { previousPeriod } from '../../src/exchange/jobs.js';

let s: Site;
beforeEach(async () => {
  s = await startSite();
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
});
afterEach(() => s.close());

const bundleDir = () => s.h.config.exchange.bundleDir;

describe('the monthly export', () => {
  it('when the collector starts after a due export was missed, then the export runs once and the next is stored', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const jobs = s.h.services.exchange.jobs;
    s.h.services.db.transaction(() => (s.h.services.exchange.state.nextExportDue = Date.now() - 60_000))();
    const file = await jobs.catchUp();
    expect(file).toBeTruthy();
    expect(existsSync(file!)).toBe(true);
    expect(file).toContain(previousPeriod(Date.now()));
    expect(s.h.services.exchange.state.nextExportDue!).toBeGreaterThan(Date.now());
    expect(await jobs.catchUp()).toBeNull(); // not due again
    const alert = (await s.h.api.get('/api/v1/alerts?kind=export_ready')).body.items[0];
    expect(alert.message).toContain('carry it to the upstream');
  });

  it('then a scheduled export in January covers December', () => {
    expect(previousPeriod(Date.UTC(2027, 0, 1, 2))).toBe('2026-12');
    expect(previousPeriod(Date.UTC(2026, 6, 1, 2))).toBe('2026-06');
  });
});

describe('the watched inbox', () => {
  it('when a response is dropped in, then it is applied once it stops growing, and moved to archive', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const r = await s.up.process((await s.exportNow()).file);
    const dropped = join(bundleDir(), 'inbox', 'response.opb');
    copyFileSync(r.responseFile, dropped);
    const jobs = s.h.services.exchange.jobs;
    expect(await jobs.pollInbox()).toEqual({ imported: [], alreadyImported: [], rejected: [] }); // first sight: wait for it to settle
    expect(await jobs.pollInbox()).toEqual({ imported: ['response.opb'], alreadyImported: [], rejected: [] });
    expect(existsSync(dropped)).toBe(false);
    expect(readdirSync(join(bundleDir(), 'archive'))).toContain('response.opb');
    expect(s.h.count("SELECT count(*) FROM report_acks WHERE status = 'accepted'")).toBe(1);
  });

  it('when the inbox is watched and a response is dropped in, then it is applied within seconds, with no poll', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const r = await s.up.process((await s.exportNow()).file);
    const unwatch = s.h.services.exchange.jobs.watchInbox(100);
    try {
      copyFileSync(r.responseFile, join(bundleDir(), 'inbox', 'watched.opb'));
      const deadline = Date.now() + 5000;
      while (!readdirSync(join(bundleDir(), 'archive')).includes('watched.opb') && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 50));
      expect(readdirSync(join(bundleDir(), 'archive'))).toContain('watched.opb');
      expect(s.h.count("SELECT count(*) FROM report_acks WHERE status = 'accepted'")).toBe(1);
    } finally {
      unwatch();
    }
    await s.h.services.exchange.jobs.idle();
  });

  it('when a response already imported is dropped in again, then it moves to archive with a note and an event, and is not read again', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const r = await s.up.process((await s.exportNow()).file);
    expect((await s.importFile(r.responseFile)).status).toBe(200);
    const again = join(bundleDir(), 'inbox', 'again.opb');
    copyFileSync(r.responseFile, again);
    const jobs = s.h.services.exchange.jobs;
    await jobs.pollInbox();
    expect(await jobs.pollInbox()).toEqual({ imported: [], alreadyImported: ['again.opb'], rejected: [] });
    expect(existsSync(again)).toBe(false);
    const note = readFileSync(join(bundleDir(), 'archive', 'again.opb.note'), 'utf8');
    expect(note).toMatch(/^already imported: bundle \S+ was applied before/);
    const e = (await s.h.api.get('/api/v1/events?type=exchange.already_imported')).body.items;
    expect(e).toHaveLength(1);
    expect(e[0].details).toMatchObject({ file: 'again.opb', movedTo: join(bundleDir(), 'archive', 'again.opb') });
    expect(await jobs.pollInbox()).toEqual({ imported: [], alreadyImported: [], rejected: [] });
    expect(await jobs.pollInbox()).toEqual({ imported: [], alreadyImported: [], rejected: [] });
    expect((await s.h.api.get('/api/v1/alerts?kind=bundle_rejected')).body.items).toHaveLength(0);
  });

  it('when a refused bundle is dropped in, then it moves to rejected with a .reason file and an alert', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const r = await s.up.process((await s.exportNow()).file);
    const bad = readFileSync(r.responseFile);
    bad[600] = bad[600]! ^ 1;
    writeFileSync(join(bundleDir(), 'inbox', 'bad.opb'), bad);
    const jobs = s.h.services.exchange.jobs;
    await jobs.pollInbox();
    expect(await jobs.pollInbox()).toEqual({ imported: [], alreadyImported: [], rejected: ['bad.opb'] });
    const reason = readFileSync(join(bundleDir(), 'rejected', 'bad.opb.reason'), 'utf8');
    expect(reason).toMatch(/^bad_signature: /);
    expect((await s.h.api.get('/api/v1/alerts?kind=bundle_rejected')).body.items[0].subject).toBe('bad.opb');
    expect(s.h.count('SELECT count(*) FROM report_pending')).toBe(1);
  });

  it('when a FIFO, a directory and a symbolic link named *.opb sit in the inbox, then none is opened: each moves to rejected with its reason', async () => {
    const inbox = join(bundleDir(), 'inbox');
    execFileSync('mkfifo', [join(inbox, 'pipe.opb')]); // opened, it would block until a writer came
    mkdirSync(join(inbox, 'folder.opb'));
    writeFileSync(join(bundleDir(), 'elsewhere'), 'x');
    symlinkSync(join(bundleDir(), 'elsewhere'), join(inbox, 'link.opb'));
    const jobs = s.h.services.exchange.jobs;
    const first = await jobs.pollInbox();
    expect(first.rejected.sort()).toEqual(['folder.opb', 'link.opb', 'pipe.opb']);
    expect(readdirSync(inbox)).toEqual([]);
    expect(readFileSync(join(bundleDir(), 'rejected', 'pipe.opb.reason'), 'utf8')).toContain('is a FIFO');
    expect(readFileSync(join(bundleDir(), 'rejected', 'folder.opb.reason'), 'utf8')).toContain('is a directory');
    expect(readFileSync(join(bundleDir(), 'rejected', 'link.opb.reason'), 'utf8')).toContain('is a symbolic link');
    expect(await jobs.pollInbox()).toEqual({ imported: [], alreadyImported: [], rejected: [] });
  });
});

describe('when an export waits too long for its answer', () => {
  it('then an ACK-overdue alert is raised, and cleared by the answer', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const exp = await s.exportNow();
    s.h.services.db.prepare('UPDATE bundles SET created_at = ? WHERE id = ?').run(Date.now() - 91 * 86_400_000, exp.bundleId);
    await s.h.api.post('/api/v1/alerts/evaluate').expect(200);
    const open = (await s.h.api.get('/api/v1/alerts?kind=ack_overdue')).body.items;
    expect(open).toHaveLength(1);
    expect(open[0].message).toContain('no answer within 90 days');
    const r = await s.up.process(exp.file);
    await s.importFile(r.responseFile);
    await s.h.api.post('/api/v1/alerts/evaluate').expect(200);
    expect((await s.h.api.get('/api/v1/alerts?kind=ack_overdue')).body.items).toHaveLength(0);
  });
});
