import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Identity } from '../identity/identity.js';
import { fingerprint, publicKeyFromSeed } from '../shared/ed25519.js';
import type { EventService } from './service.js';
import { signCheckpoint, type Checkpoint } from './checkpoint.js';

export type CheckpointReason = 'schedule' | 'export' | 'sync-part' | 'manual';

interface CheckpointRow {
  collector_id: string;
  key_id: string;
  event_id: number;
  hash: string;
  count: number;
  at: number;
  signature: string;
}

const toCheckpoint = (r: CheckpointRow): Checkpoint => ({
  collectorId: r.collector_id, keyId: r.key_id, eventId: r.event_id, hash: r.hash, count: r.count, at: new Date(r.at).toISOString(), signature: r.signature,
});

/**
 * The collector's signed checkpoints of its audit trail, kept in its own store. They are made on
 * a schedule and at every usage export or sync part; an Outpost upstream keeps the copies that
 * travel in bundles, out of reach of whoever can write this store.
 */
export class CheckpointService {
  constructor(
    private db: Db,
    private clock: Clock,
    private identity: Identity,
    private events: EventService,
    private dataDir: string,
  ) {}

  /**
   * Signs the head as it is now and keeps the checkpoint. A head already checkpointed under the
   * current key is not signed again (an idle collector would add a row an hour for nothing):
   * the latest checkpoint is returned. Null while the trail is empty.
   */
  make(reason: CheckpointReason): Checkpoint | null {
    return this.db.transaction(() => {
      const head = this.events.chainHead();
      if (!head) return null;
      const last = this.latest();
      if (last && last.eventId === head.id && last.hash === head.hash && last.keyId === this.identity.fingerprint) return last;
      const count = (this.db.prepare('SELECT count(*) AS n FROM events WHERE id <= ?').get(head.id) as { n: number }).n;
      const c = signCheckpoint(
        { collectorId: this.identity.collectorId, keyId: this.identity.fingerprint, eventId: head.id, hash: head.hash, count, at: new Date(this.clock.now()).toISOString() },
        (b) => this.identity.signDetached(b),
      );
      this.db
        .prepare('INSERT INTO event_checkpoints (collector_id, key_id, event_id, hash, count, at, signature, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(c.collectorId, c.keyId, c.eventId, c.hash, c.count, Date.parse(c.at), c.signature, reason);
      return c;
    })();
  }

  latest(): Checkpoint | null {
    const r = this.db.prepare('SELECT * FROM event_checkpoints ORDER BY id DESC LIMIT 1').get() as CheckpointRow | undefined;
    return r ? toCheckpoint(r) : null;
  }

  /** Every local checkpoint, oldest head first: a few a day, so a year's fit in memory. */
  all(): Checkpoint[] {
    return (this.db.prepare('SELECT * FROM event_checkpoints ORDER BY event_id, id').all() as CheckpointRow[]).map(toCheckpoint);
  }

  /** Local checkpoints whose head is at or after `sinceEventId`, oldest first, streamed. */
  *since(sinceEventId: number): Generator<Checkpoint> {
    for (const r of this.db.prepare('SELECT * FROM event_checkpoints WHERE event_id >= ? ORDER BY event_id, id').iterate(sinceEventId) as Iterable<CheckpointRow>) {
      yield toCheckpoint(r);
    }
  }

  /** The collector's keys, current and retired by rotation, by fingerprint: any of them may have signed a checkpoint. */
  keys(): Map<string, Buffer> {
    return collectorKeys(this.dataDir, this.identity);
  }
}

/**
 * The current key and those a rotation retired (kept beside it as `collector.key.retired-*`).
 * Only the public halves are returned.
 */
export function collectorKeys(dataDir: string, identity: Pick<Identity, 'fingerprint' | 'publicKey'>): Map<string, Buffer> {
  const keys = new Map<string, Buffer>([[identity.fingerprint, identity.publicKey]]);
  const dir = join(dataDir, 'keys');
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('collector.key.retired-')) continue;
    const seed = Buffer.from(readFileSync(join(dir, name), 'utf8').trim(), 'base64');
    if (seed.length !== 32) continue;
    const pub = publicKeyFromSeed(seed);
    keys.set(fingerprint(pub), pub);
  }
  return keys;
}
