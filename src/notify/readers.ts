import type { Db } from '../store/open.js';

/** Whether a user may be told of an alert about `vaId` (null: about no VA, such as the clock or the sync). */
export type MayRead = (userId: string, vaId: string | null) => boolean;

/**
 * A subscriber hears only what it may read now: an active user with a role on that VA, or on
 * every VA (every role reads). An alert about no VA is collector-wide, for collector-wide roles
 * alone. Asked when the notification is written, inside the alert's transaction, so a role
 * taken away or a user disabled since subscribing stops the mail at once.
 */
export function readersOf(db: Db): MayRead {
  const q = db.prepare(
    `SELECT 1 FROM users u JOIN user_roles r ON r.user_id = u.id
     WHERE u.id = ? AND u.status = 'active' AND (r.va_id IS NULL OR r.va_id = '' OR r.va_id = ?) LIMIT 1`,
  );
  return (userId, vaId) => q.get(userId, vaId) !== undefined;
}
