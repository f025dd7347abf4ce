import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { chainText, GENESIS } from '../../src/events/service.js';
import { sha256hex } from '../../src/shared/hash.js';
import { databaseFile } from '../../src/main.js';
import { signCheckpoint } from '../../src/events/checkpoint.js';
import { generateKeyPair, fingerprint } from '../../src/shared/ed25519.js';
import nacl from 'tweetnacl';

// Tests here run a dozen CLI processes each, one after another: about a second apiece on an idle
// two-core machine, several when it is loaded; the default 30 s bound is for one or two.
vi.setConfig({ testTimeout: 90_000 });

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/**
 * A collector with a trail of VA creations. `every` VAs, a checkpoint is signed; the trail and
 * its checkpoints are then exported, as a SIEM (or the upstream) would keep them off the site.
 */
async function site(vas = 8, every = 1): Promise<{ h: Harness; offsite: string; vaEvents: number[] }> {
  h = await startHarness();
  for (let i = 1; i <= vas; i++) {
    await h.api.post('/api/v1/virtual-accounts').send({ name: `VA ${i}` }).expect(201);
    if (i % every === 0) await h.api.post('/api/v1/events/checkpoints').expect(200);
  }
  const offsite = join(h.dir, 'offsite.jsonl');
  await h.api.post('/api/v1/events/export').send({ out: offsite }).expect(200);
  const vaEvents = (h.services.db.prepare("SELECT id FROM events WHERE type = 'va.created' AND subject != ? ORDER BY id").all(h.defaultVa) as { id: number }[]).map((r) => r.id);
  return { h, offsite, vaEvents };
}

/** What an attacker with write access to the store's file does: a second connection, and the whole chain recomputed after. */
function tamper(site: Harness | string, change: (db: Database.Database) => void): void {
  const db = new Database(typeof site === 'string' ? site : databaseFile(site.config));
  try {
    db.transaction(() => {
      change(db);
      let prev = GENESIS;
      for (const r of db.prepare('SELECT * FROM events ORDER BY id').all() as { id: number; at: number; type: string; actor: string; subject: string | null; va_id: string | null; details: string }[]) {
        const hash = sha256hex(chainText(prev, r));
        db.prepare('UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?').run(prev, hash, r.id);
        prev = hash;
      }
    })();
  } finally {
    db.close();
  }
}

const shiftUpFrom = (db: Database.Database, id: number) => {
  db.prepare('UPDATE events SET id = -id WHERE id >= ?').run(id);
  db.prepare('UPDATE events SET id = 1 - id WHERE id < 0').run();
};
const shiftDownAfter = (db: Database.Database, id: number) => {
  db.prepare('UPDATE events SET id = -id WHERE id > ?').run(id);
  db.prepare('UPDATE events SET id = -id - 1 WHERE id < 0').run();
};

const verifyWith = async (h: Harness, file?: string) =>
  (file ? await h.api.post('/api/v1/events/verify').send({ checkpoints: file }) : await h.api.get('/api/v1/events/verify')).body;

describe('signed checkpoints of the audit trail', () => {
  it('when nothing was touched, then the chain and every checkpoint match, from the local copies and from the exported file', async () => {
    const { h, offsite } = await site(4);
    for (const r of [await verifyWith(h), await verifyWith(h, offsite)]) {
      expect(r).toMatchObject({ intact: true, firstBrokenId: null, finding: null });
      expect(r.checkpoints.matched).toBe(r.checkpoints.checked);
      expect(r.checkpoints.matched).toBeGreaterThanOrEqual(4);
    }
  });

  // Each rewrite leaves a chain that checks out on its own: only the checkpoints can tell.
  const cases: [string, (db: Database.Database, victim: number) => void, (victim: number, last: number) => object][] = [
    ['an event\'s details are altered', (db, v) => db.prepare(`UPDATE events SET details = '{"name":"VA X"}' WHERE id = ?`).run(v), (v) => ({ kind: 'changed', eventId: v })],
    ['an event in the middle is deleted', (db, v) => db.prepare('DELETE FROM events WHERE id = ?').run(v), (v) => ({ kind: 'removed', eventId: v })],
    ['an event in the middle is deleted and the ids after it renumbered', (db, v) => {
      db.prepare('DELETE FROM events WHERE id = ?').run(v);
      shiftDownAfter(db, v);
    }, (v) => ({ kind: 'removed', eventId: v })],
    ['an event is inserted (the ids after it renumbered)', (db, v) => {
      shiftUpFrom(db, v);
      db.prepare("INSERT INTO events (id, at, type, actor, subject, va_id, details, prev_hash, hash) VALUES (?, ?, 'va.created', 'cli', 'va_forged', NULL, '{}', '', '')")
        .run(v, (db.prepare('SELECT at FROM events WHERE id = ?').get(v - 1) as { at: number }).at);
    }, (v) => ({ kind: 'inserted', eventId: v })],
    ['the last events are deleted (a truncated tail)', (db, v) => db.prepare('DELETE FROM events WHERE id >= ?').run(v), (v, last) => ({ kind: 'truncated', eventId: v, range: { from: v, to: last } })],
  ];
  for (const [what, change, expected] of cases) {
    it(`when ${what} and the whole chain recomputed, then the chain check finds nothing but the checkpoints name the event`, async () => {
      const { h, offsite, vaEvents } = await site(8);
      const victim = vaEvents[4]!;
      const last = h.services.events.head().id;
      tamper(h, (db) => change(db, victim));
      expect(await h.services.events.verifyChain()).toBeNull();
      for (const r of [await verifyWith(h, offsite), await verifyWith(h)]) {
        expect(r.intact).toBe(false);
        expect(r.finding).toMatchObject(expected(victim, last));
        expect(r.finding.message).toContain(String(victim));
      }
    });
  }

  it('when checkpoints are sparse, then a change is bounded by the last checkpoint that matches and the first that does not', async () => {
    const { h, offsite, vaEvents } = await site(9, 3);
    const victim = vaEvents[4]!; // after the checkpoint of VA 3, before that of VA 6
    tamper(h, (db) => db.prepare(`UPDATE events SET actor = 'someone else' WHERE id = ?`).run(victim));
    const r = await verifyWith(h, offsite);
    expect(r.finding).toMatchObject({ kind: 'changed', range: { from: vaEvents[2]! + 1, to: vaEvents[5]! } });
    expect(r.finding.message).toContain(`lies in events ${vaEvents[2]! + 1} to ${vaEvents[5]}`);
  });

  it('when the command checks a rewritten trail, then it names the event and exits 1; an intact one exits 0', async () => {
    const dataDir = tempDataDir();
    const env = envFor(dataDir);
    const offsite = join(dataDir, '..', 'offsite.jsonl');
    for (const args of [['va', 'create', 'Ops'], ['events', 'checkpoint'], ['va', 'create', 'Lab'], ['events', 'checkpoint'], ['events', 'export', '--out', offsite]]) {
      expect((await cli(args, env)).code).toBe(0);
    }
    const ok = await cli(['events', 'verify', '--checkpoints', offsite], env);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringContaining('the audit trail is intact')]);
    const db = new Database(join(dataDir, 'outpost.db'));
    const victim = (db.prepare("SELECT id FROM events WHERE type = 'va.created' ORDER BY id DESC LIMIT 1").get() as { id: number }).id;
    db.close();
    tamper(join(dataDir, 'outpost.db'), (db) => db.prepare(`UPDATE events SET details = '{"name":"Other"}' WHERE id = ?`).run(victim));
    const bad = await cli(['events', 'verify', '--checkpoints', offsite], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`the audit trail was tampered with (changed): event ${victim} was changed`);
    const local = await cli(['events', 'verify'], env);
    expect([local.code, local.stdout]).toEqual([1, expect.stringContaining(`event ${victim} was changed`)]);
  });

  it('when a checkpoint of the file is forged, then the file is refused with the checkpoint named, and nothing is judged', async () => {
    const { h, offsite } = await site(3);
    const lines = readFileSync(offsite, 'utf8').trim().split('\n');
    const i = lines.findIndex((l) => l.includes('"kind":"checkpoint"'));
    const cp = JSON.parse(lines[i]!);
    // The hash of a rewritten chain, under the collector's own (unchanged) signature.
    lines[i] = JSON.stringify({ ...cp, hash: 'f'.repeat(64) });
    const forged = join(h.dir, 'forged.jsonl');
    writeFileSync(forged, lines.join('\n') + '\n');
    const r = await h.api.post('/api/v1/events/verify').send({ checkpoints: forged });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('forged_checkpoint');
    expect(r.body.error.message).toContain(`(head event ${cp.eventId}`);
    expect(r.body.error.message).toContain('its signature does not verify');

    // Signed, but by a key that is not the collector's.
    const kp = generateKeyPair();
    const stranger = signCheckpoint({ ...cp, keyId: fingerprint(kp.publicKey), signature: undefined }, (b) => Buffer.from(nacl.sign.detached(b, nacl.sign.keyPair.fromSeed(kp.seed).secretKey)));
    writeFileSync(forged, JSON.stringify({ kind: 'checkpoint', ...stranger }) + '\n');
    const s = await h.api.post('/api/v1/events/verify').send({ checkpoints: forged });
    expect([s.status, s.body.error.code]).toEqual([400, 'forged_checkpoint']);
    expect(s.body.error.message).toContain('which is not a key of collector');

    writeFileSync(forged, '{"kind":"note"}\n');
    const junk = await h.api.post('/api/v1/events/verify').send({ checkpoints: forged });
    expect([junk.status, junk.body.error.code, junk.body.error.message]).toEqual([400, 'bad_checkpoint_file', expect.stringContaining('line 1 is neither a checkpoint nor an event')]);
  });

  it('when a row is written into the local checkpoint table, then the local check reports it', async () => {
    const { h } = await site(2);
    const db = new Database(databaseFile(h.config));
    db.prepare("UPDATE event_checkpoints SET hash = ? WHERE id = (SELECT max(id) FROM event_checkpoints)").run('e'.repeat(64));
    db.close();
    const r = await verifyWith(h);
    expect(r).toMatchObject({ intact: false, finding: { kind: 'forged_checkpoint' } });
  });
});

describe('the trail exported for a SIEM', () => {
  it('when exported, then each event carries its hashes and each checkpoint follows the event it signs; --since skips what the SIEM holds', async () => {
    const { h, offsite } = await site(3);
    const lines = readFileSync(offsite, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const events = lines.filter((l) => l.kind === 'event');
    expect(events.length).toBe(h.services.events.head().id);
    let prev = GENESIS;
    for (const e of events) {
      expect(e.prevHash).toBe(prev);
      prev = e.hash;
    }
    lines.forEach((l, i) => {
      if (l.kind === 'checkpoint') expect(lines[i - 1]).toMatchObject({ kind: expect.any(String) });
      if (l.kind === 'checkpoint' && lines[i - 1].kind === 'event') expect(lines[i - 1].id).toBe(l.eventId);
    });
    const since = events[events.length - 2].id;
    const tail = join(h.dir, 'tail.jsonl');
    const r = (await h.api.post('/api/v1/events/export').send({ out: tail, since }).expect(200)).body;
    expect(r).toMatchObject({ events: 1, firstId: since + 1 });
    const again = await h.api.post('/api/v1/events/export').send({ out: tail });
    expect([again.status, again.body.error.code]).toEqual([409, 'file_exists']);
    const nowhere = await h.api.post('/api/v1/events/export').send({ out: join(h.dir, 'no', 'such', 'f.jsonl') });
    expect([nowhere.status, nowhere.body.error.code]).toEqual([400, 'folder_not_found']);
  });
});
