import { randomBytes } from 'node:crypto';

/**
 * Ids are a prefix, a time part and randomness: sortable by creation (keyset paging follows
 * creation order) and unguessable. The time part comes from the injected clock.
 */
export function newId(prefix: string, nowMs: number): string {
  const time = nowMs.toString(36).padStart(9, '0');
  return `${prefix}_${time}${randomBytes(8).toString('hex')}`;
}
