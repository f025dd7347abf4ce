import { sha256hex } from '../shared/hash.js';
import { Pacer } from '../shared/pacer.js';
import { chainText, GENESIS, type EventService } from './service.js';
import type { Checkpoint } from './checkpoint.js';

export type FindingKind = 'chain_broken' | 'removed' | 'inserted' | 'changed' | 'truncated' | 'forged_checkpoint';

export interface TrailFinding {
  kind: FindingKind;
  /** The first event found changed, removed or inserted (for a truncated tail, the first one missing). */
  eventId: number;
  /**
   * Where the first difference lies when the evidence cannot name one event: after the last
   * checkpoint that still matches, up to the head of the first that does not. Equal bounds
   * name the event exactly.
   */
  range: { from: number; to: number };
  /** The checkpoint the trail no longer matches, if one is involved. */
  checkpoint: { eventId: number; count: number; at: string; keyId: string } | null;
  message: string;
}

export interface TrailReport {
  intact: boolean;
  /** The first event that does not chain to the one before it (the chain check alone), or null. */
  firstBrokenId: number | null;
  head: { id: number; hash: string };
  events: number;
  checkpoints: { source: 'local' | 'file'; checked: number; matched: number; latest: { eventId: number; at: string } | null };
  /**
   * Restores from a backup the trail records (`collector.restored`): the trail went back to the
   * backup's head and went on from there. Checkpoints signed before a restore of events after
   * its backup's head are of the history the restore set aside: counted here, not held against
   * the trail. The upstream records each restore too, from the signed epoch statement.
   */
  restores: { eventId: number; at: string; backupHead: number; supersededCheckpoints: number }[];
  finding: TrailFinding | null;
}

const cpRef = (c: Checkpoint) => ({ eventId: c.eventId, count: c.count, at: c.at, keyId: c.keyId });
const span = (from: number, to: number) => (from === to ? `event ${from}` : `events ${from} to ${to}`);

/**
 * Walks the trail once, oldest first and a slice at a time, and holds it against signed
 * checkpoints (their signatures checked before). The chain alone proves nothing to someone who
 * can rewrite the whole table; a checkpoint's hash can only be met by the very events it signed.
 * Stops at the first difference: everything after it differs too once the chain is recomputed.
 *
 * What can be named exactly: a gap in the ids (ids are given in order and never reused, so a
 * missing id is a removed event), a link that does not chain, and a tail that ends before a
 * checkpoint's head. A change (or an insertion or removal whose ids were renumbered) is known
 * to lie after the last checkpoint that matches and at or before the first that does not: the
 * finer the checkpoints, the closer the bound.
 */
export async function checkTrail(events: EventService, checkpoints: readonly Checkpoint[], source: 'local' | 'file', sliceRows = 2_000): Promise<TrailReport> {
  const restores = events.list({ type: 'collector.restored', limit: 10_000 }).items.map((e) => ({
    eventId: e.id, at: e.at, backupHead: Number((e.details.backupEventHead as { id?: unknown } | undefined)?.id ?? e.id - 1), supersededCheckpoints: 0,
  }));
  const setAside = (c: Checkpoint) => {
    const r = restores.find((x) => c.eventId > x.backupHead && Date.parse(c.at) <= Date.parse(x.at));
    if (r) r.supersededCheckpoints++;
    return r !== undefined;
  };
  const cps = checkpoints.filter((c) => !setAside(c)).sort((a, b) => a.eventId - b.eventId || Date.parse(a.at) - Date.parse(b.at));
  const head = events.head();
  let prev = GENESIS;
  let prevId = 0;
  let count = 0;
  let provenId = 0; // the last event a matching checkpoint vouches for
  let ci = 0;
  let matched = 0;
  let firstBrokenId: number | null = null;
  const pacer = new Pacer();
  const done = (finding: TrailFinding | null): TrailReport => ({
    intact: finding === null, firstBrokenId, head, events: count,
    checkpoints: { source, checked: ci, matched, latest: cps.length ? { eventId: cps[cps.length - 1]!.eventId, at: cps[cps.length - 1]!.at } : null },
    restores,
    finding,
  });

  walk: while (prevId < head.id) {
    const rows = events.slice(prevId, head.id, sliceRows);
    if (!rows.length) break;
    for (const r of rows) {
      const chains = r.prev_hash === prev && sha256hex(chainText(prev, r)) === r.hash;
      if (r.id !== prevId + 1) {
        // Said as the chain check alone would say it too: the row after the gap links to nothing.
        if (!chains) firstBrokenId = r.id;
        const cp = cps[ci] && cps[ci]!.eventId < r.id ? cps[ci]! : null;
        return done({
          kind: 'removed', eventId: prevId + 1, range: { from: prevId + 1, to: r.id - 1 }, checkpoint: cp ? cpRef(cp) : null,
          message: `${span(prevId + 1, r.id - 1)} ${r.id - prevId - 1 === 1 ? 'was' : 'were'} removed: the ids run from ${prevId} to ${r.id}`,
        });
      }
      if (!chains) {
        firstBrokenId = r.id;
        return done({
          kind: 'chain_broken', eventId: r.id, range: { from: r.id, to: r.id }, checkpoint: null,
          message: `event ${r.id} does not chain to the one before it: it was altered in place (or the one before it was)`,
        });
      }
      count++;
      for (; ci < cps.length && cps[ci]!.eventId === r.id; ci++) {
        const cp = cps[ci]!;
        if (cp.hash === r.hash && cp.count === count) {
          provenId = r.id;
          matched++;
          continue;
        }
        const range = { from: provenId + 1, to: r.id };
        const since = provenId ? `events up to ${provenId} match the checkpoints; ` : '';
        // Checkpoints on both sides of one event: the original chain can be tried against the rows
        // as they are now, and an event slipped in (or taken out) with the ids renumbered tells.
        if (range.from === range.to && count === cp.count) {
          const provenHash = provenId ? cps.find((c) => c.eventId === provenId)!.hash : GENESIS;
          const nextRow = events.slice(r.id, r.id + 1, 1)[0];
          const nextCp = cps[ci + 1]?.eventId === r.id + 1 ? cps[ci + 1] : undefined;
          if (nextRow && sha256hex(chainText(provenHash, nextRow)) === cp.hash) {
            return done({
              kind: 'inserted', eventId: r.id, range, checkpoint: cpRef(cp),
              message: `event ${r.id} was inserted (the ids after it renumbered): the event the checkpoint of ${cp.at} signed as ${r.id} is now ${r.id + 1}`,
            });
          }
          if (nextCp && sha256hex(chainText(cp.hash, r)) === nextCp.hash) {
            return done({
              kind: 'removed', eventId: r.id, range, checkpoint: cpRef(cp),
              message: `event ${r.id} was removed (the ids after it renumbered): the event now numbered ${r.id} is the one the checkpoint of ${nextCp.at} signed as ${r.id + 1}`,
            });
          }
        }
        const signed = `the checkpoint of ${cp.at} signed event ${cp.eventId} as the ${nth(cp.count)} event with hash ${cp.hash.slice(0, 12)}…`;
        const finding: TrailFinding =
          count !== cp.count
            ? {
                kind: count < cp.count ? 'removed' : 'inserted', eventId: range.from, range, checkpoint: cpRef(cp),
                message: `${Math.abs(cp.count - count)} event(s) ${count < cp.count ? 'removed' : 'inserted'} in ${span(range.from, range.to)} (ids renumbered): ${since}${signed}, the trail now counts ${count} up to it`,
              }
            : {
                kind: 'changed', eventId: range.from, range, checkpoint: cpRef(cp),
                message:
                  (range.from === range.to ? `event ${range.from} was changed` : `the first event changed (or inserted in place of another) lies in ${span(range.from, range.to)}`) +
                  `: ${since}${signed}, it now has ${r.hash.slice(0, 12)}…`,
              };
        ci++;
        return done(finding);
      }
      prev = r.hash;
      prevId = r.id;
    }
    if (prevId < head.id) await pacer.pause();
    else break walk;
  }
  if (ci < cps.length) {
    // The farthest checkpoint says how much of the tail is gone.
    const cp = cps[cps.length - 1]!;
    ci = cps.length;
    return done({
      kind: 'truncated', eventId: prevId + 1, range: { from: prevId + 1, to: cp.eventId }, checkpoint: cpRef(cp),
      message: `the trail was truncated: it ends at event ${prevId} (${count} events), but the checkpoint of ${cp.at} signed event ${cp.eventId} (${cp.count} events): ${span(prevId + 1, cp.eventId)} ${cp.eventId === prevId + 1 ? 'was' : 'were'} removed from its tail`,
    });
  }
  return done(null);
}

const nth = (n: number) => `${n}${n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
