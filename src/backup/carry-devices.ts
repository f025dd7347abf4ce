import type { Db } from '../store/open.js';

/** Device changes the replaced store made after the backup and the restore kept. */
export interface CarriedDevices {
  deregistered: string[];
  /** Deregistered in the backup, registered again since (a revival an operator approved). */
  revived: string[];
  moved: { device: string; from: string; to: string }[];
  /** The VAs whose in-use was counted again from their devices' usage. */
  recounted: string[];
}

/**
 * Deregistrations and VA moves made after the backup, read from the replaced store (attached
 * as `cur`) inside the restore's transaction. Without them a device an operator let go comes
 * back registered, its usage counted again, and a moved device comes back in its old VA. The
 * in-use of every VA they touch is then counted again from the device usage, as
 * `POST /compliance/verify` counts it, so the restored store starts without drift.
 */
export function carryDeviceChanges(db: Db, kept: string[], lost: string[], backupHead: { id: number; hash: string }): CarriedDevices | null {
  // Only a store that went on from the backup holds changes made after it: its trail has the
  // backup's head. An older store (a snapshot rolled back, a copy from before) would undo
  // what was done since, and revive a device an operator let go.
  const continues = backupHead.id === 0 || (db.prepare('SELECT hash FROM cur.events WHERE id = ?').pluck().get(backupHead.id) as string | undefined) === backupHead.hash;
  if (!continues) {
    lost.push(`the replaced store does not go on from the backup (its audit trail lacks the backup's event ${backupHead.id}): device deregistrations, revivals and moves in it were not carried over; check the devices' status and VAs`);
    return null;
  }
  const touched = new Set<string>();

  // Deregistered since: released and forgotten as `devices deregister` does. A device the backup
  // already holds as deregistered (or does not hold) is left as it is.
  const gone = db
    .prepare(
      `SELECT m.id, m.va_id AS vaId FROM main.devices m JOIN cur.devices c ON c.id = m.id
       WHERE c.status = 'deregistered' AND m.status != 'deregistered' ORDER BY m.id`,
    )
    .all() as { id: string; vaId: string }[];
  const deregister = db.prepare("UPDATE main.devices SET status = 'deregistered', pending_public_key = NULL, pending_since = NULL WHERE id = ?");
  const forget = db.prepare('DELETE FROM main.device_usage WHERE device_id = ?');
  for (const d of gone) {
    deregister.run(d.id);
    forget.run(d.id);
    touched.add(d.vaId);
  }
  if (gone.length) kept.push(`${gone.length} device(s) deregistered since the backup stay deregistered, their usage not counted: ${gone.map((d) => d.id).join(', ')}`);

  // Revived since: an operator let a deregistered device register again. It stays registered
  // (its key came over with the other key changes); what it reported since, it sends again.
  const back = db
    .prepare(
      `SELECT m.id, c.status FROM main.devices m JOIN cur.devices c ON c.id = m.id
       WHERE m.status = 'deregistered' AND c.status != 'deregistered' ORDER BY m.id`,
    )
    .all() as { id: string; status: string }[];
  const revive = db.prepare('UPDATE main.devices SET status = ?, last_seen_at = (SELECT last_seen_at FROM cur.devices WHERE id = ?) WHERE id = ?');
  for (const d of back) revive.run(d.status, d.id, d.id);
  if (back.length) kept.push(`${back.length} device(s) registered again since the backup stay registered: ${back.map((d) => d.id).join(', ')}`);

  // Moved since: into the VA the replaced store has them in, where the backup knows that VA.
  const moves = db
    .prepare(
      `SELECT m.id AS device, m.va_id AS "from", c.va_id AS "to", EXISTS (SELECT 1 FROM main.virtual_accounts v WHERE v.id = c.va_id) AS known
       FROM main.devices m JOIN cur.devices c ON c.id = m.id
       WHERE c.va_id != m.va_id AND c.status != 'deregistered' ORDER BY m.id`,
    )
    .all() as { device: string; from: string; to: string; known: number }[];
  const move = db.prepare('UPDATE main.devices SET va_id = ? WHERE id = ?');
  const moved: CarriedDevices['moved'] = [];
  const unknownVa: string[] = [];
  for (const mv of moves) {
    if (!mv.known) {
      unknownVa.push(`${mv.device} (into ${mv.to})`);
      continue;
    }
    move.run(mv.to, mv.device);
    touched.add(mv.from).add(mv.to);
    moved.push({ device: mv.device, from: mv.from, to: mv.to });
  }
  if (moved.length) kept.push(`${moved.length} device(s) moved to another virtual account since the backup stay where they were moved: ${moved.map((m) => `${m.device} (${m.from} to ${m.to})`).join(', ')}`);
  if (unknownVa.length) lost.push(`${unknownVa.length} device move(s) since the backup into a virtual account the backup does not have were not kept: ${unknownVa.join(', ')}; move them again once the virtual account is back (\`outpost devices move\`)`);

  const recounted = [...touched].sort();
  recount(db, recounted);
  return { deregistered: gone.map((d) => d.id), revived: back.map((d) => d.id), moved, recounted };
}

/** In-use of these VAs from the usage of their active devices: the sum the ledger keeps by deltas. */
function recount(db: Db, vaIds: string[]): void {
  const clear = db.prepare('DELETE FROM main.va_usage WHERE va_id = ?');
  const fill = db.prepare(
    `INSERT INTO main.va_usage (va_id, tag, in_use, devices)
     SELECT d.va_id, u.tag, sum(u.count), count(*) FROM main.device_usage u JOIN main.devices d ON d.id = u.device_id
     WHERE d.status = 'active' AND d.va_id = ? GROUP BY d.va_id, u.tag`,
  );
  for (const va of vaIds) {
    clear.run(va);
    fill.run(va);
  }
}
