import { sha256hex } from '../shared/hash.js';
import { Pacer } from '../shared/pacer.js';
import { toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import { EventRepository, type EventFilter, type EventRow } from './repository.js';
import { currentRequest } from '../shared/request-context.js';

export interface Event {
  id: number;
  at: string;
  type: string;
  actor: string;
  subject: string | null;
  vaId: string | null;
  details: Record<string, unknown>;
  /** Where it came from: the caller's address, or 'socket'; null for the collector's own doing. */
  origin: string | null;
  hash: string;
}

export const GENESIS = '0'.repeat(64);

/**
 * The canonical text a chained hash covers: every field, in a fixed order. The origin joins it
 * when an event has one: events from before origins were recorded keep their hashes.
 */
export function chainText(prev: string, r: Omit<EventRow, 'id' | 'prev_hash' | 'hash' | 'origin'> & { origin?: string | null }): string {
  const fields = [prev, r.at, r.type, r.actor, r.subject, r.va_id, r.details];
  return JSON.stringify(r.origin ? [...fields, r.origin] : fields);
}

/**
 * The append-only audit trail. Each event carries the SHA-256 of the one before it, so the
 * head hash (carried in every export bundle) commits to the whole history.
 */
export class EventService {
  private repo: EventRepository;
  /** Told of each event appended (the metrics count syncs, polls and exports by them; a rolled-back one is counted too). */
  observer: ((type: string, details: Record<string, unknown>) => void) | null = null;
  constructor(
    db: Db,
    private clock: Clock,
  ) {
    this.repo = new EventRepository(db);
  }

  /** Call inside the transaction that makes the change, so the event and the change land together. */
  append(type: string, actor: string, subject: string | null, vaId: string | null, details: Record<string, unknown> = {}): void {
    const prev = this.repo.head()?.hash ?? GENESIS;
    const row = { at: this.clock.now(), type, actor, subject, va_id: vaId, details: JSON.stringify(details), origin: currentRequest()?.origin ?? null };
    const hash = sha256hex(chainText(prev, row));
    this.repo.insert({ ...row, prev_hash: prev, hash });
    this.observer?.(type, details);
  }

  head(): { id: number; hash: string } {
    return this.repo.head() ?? { id: 0, hash: GENESIS };
  }

  /** The head as a bundle carries it: null while the trail is empty. */
  chainHead(): { id: number; hash: string } | null {
    return this.repo.head() ?? null;
  }

  /** Raw rows with ids in (after, upTo], oldest first: for the checks and exports that walk the trail. */
  slice(after: number, upTo: number, limit: number): EventRow[] {
    return this.repo.slice(after, upTo, limit);
  }

  /** Events since a time, counted by type (about these VAs only, when given). */
  countByType(since: number, vaIds?: string[]) {
    return this.repo.countByType(since, vaIds);
  }

  list(f: EventFilter): { items: Event[]; nextCursor: string | null } {
    const rows = this.repo.list(f);
    const items = rows.map(toEvent);
    const last = rows[rows.length - 1];
    return { items, nextCursor: rows.length === f.limit && last ? String(last.id) : null };
  }

  /**
   * Recomputes the chain up to `upTo` (the head when the check starts: events appended while
   * it runs are checked next time); returns the id of the first event that does not match, or
   * null. Reads a slice of rows at a time, paced, so a million events never hold device replies.
   */
  async verifyChain(upTo = this.head().id, sliceRows = 2_000): Promise<number | null> {
    let prev = GENESIS;
    let after = 0;
    const pacer = new Pacer();
    while (after < upTo) {
      const rows = this.repo.slice(after, upTo, sliceRows);
      if (!rows.length) break;
      for (const r of rows) {
        if (r.prev_hash !== prev || sha256hex(chainText(prev, r)) !== r.hash) return r.id;
        prev = r.hash;
      }
      after = rows[rows.length - 1]!.id;
      if (after < upTo) await pacer.pause();
    }
    return null;
  }
}

function toEvent(r: EventRow): Event {
  return {
    id: r.id,
    at: toIso(r.at)!,
    type: r.type,
    actor: r.actor,
    subject: r.subject,
    vaId: r.va_id,
    origin: r.origin ?? null,
    details: JSON.parse(r.details) as Record<string, unknown>,
    hash: r.hash,
  };
}
