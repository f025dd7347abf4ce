import { csvLine } from '../shared/csv.js';
import type { EventFilter } from './repository.js';
import type { EventService } from './service.js';

/** The events the filter matches as CSV rows, newest first as the list gives them, a page at a time. */
export function* eventsCsv(events: EventService, f: Omit<EventFilter, 'before' | 'limit'>, pageRows = 1000): Generator<string> {
  yield csvLine(['id', 'at', 'type', 'actor', 'subject', 'va_id', 'origin', 'details', 'hash']);
  let before: number | undefined;
  for (;;) {
    const page = events.list({ ...f, before, limit: pageRows });
    for (const e of page.items) yield csvLine([e.id, e.at, e.type, e.actor, e.subject, e.vaId, e.origin, JSON.stringify(e.details), e.hash]);
    if (page.nextCursor === null) return;
    before = Number(page.nextCursor);
  }
}
