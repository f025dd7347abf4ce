import { z } from 'zod';
import type { Db } from '../store/open.js';
import type { Clock } from '../shared/clock.js';
import { badRequest, notFound } from '../shared/errors.js';
import { SEVERITIES, type Filter } from './filter.js';

export const subscriptionBody = z.strictObject({
  email: z.email({ error: 'an e-mail address, such as ops@example.com' }).max(254),
  severities: z.array(z.enum(SEVERITIES)).min(1, 'at least one severity: info, warning, critical').max(3).default(['warning', 'critical']),
  /** null: every VA (and the alerts about no VA); a list: those VAs' alerts only. */
  vaIds: z.array(z.string().min(1).max(100)).min(1, 'at least one VA id, or null for every VA').max(1000).nullable().default(null),
  resolutions: z.boolean().default(false),
  /** A daily digest of the day's alerts, besides the notifications one by one. */
  digest: z.boolean().default(false),
});
export type SubscriptionInput = z.infer<typeof subscriptionBody>;

export interface Subscription {
  userId: string;
  email: string;
  filter: Omit<Filter, 'kinds'>;
  resolutions: boolean;
  digest: boolean;
}

interface Row { user_id: string; email: string; filter_json: string; resolutions: number; digest: number }
const toSub = (r: Row): Subscription => ({ userId: r.user_id, email: r.email, filter: JSON.parse(r.filter_json) as Filter, resolutions: r.resolutions === 1, digest: r.digest === 1 });

/** Each user's e-mail subscription: severities and VAs. */
export class SubscriptionStore {
  private allStmt;
  constructor(private db: Db, private clock: Clock) {
    this.allStmt = db.prepare("SELECT s.* FROM notify_subscriptions s JOIN users u ON u.id = s.user_id WHERE u.status = 'active'");
  }

  all(): Subscription[] {
    return (this.allStmt.all() as Row[]).map(toSub);
  }

  get(userId: string): Subscription | null {
    const r = this.db.prepare('SELECT * FROM notify_subscriptions WHERE user_id = ?').get(userId) as Row | undefined;
    return r ? toSub(r) : null;
  }

  set(userId: string, input: SubscriptionInput, knownVa: (id: string) => boolean): Subscription {
    const unknown = (input.vaIds ?? []).filter((v) => !knownVa(v));
    if (unknown.length) throw badRequest('invalid_subscription', `vaIds: no such VA: ${unknown.join(', ')}`, { field: 'vaIds', unknown });
    return this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM users WHERE id = ?').get(userId)) throw notFound('user', userId);
      const now = this.clock.now();
      this.db
        .prepare(
          `INSERT INTO notify_subscriptions (user_id, email, filter_json, resolutions, digest, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, filter_json = excluded.filter_json, resolutions = excluded.resolutions,
             digest = excluded.digest, updated_at = excluded.updated_at`,
        )
        .run(userId, input.email, JSON.stringify({ severities: input.severities, vaIds: input.vaIds }), input.resolutions ? 1 : 0, input.digest ? 1 : 0, now, now);
      return this.get(userId)!;
    })();
  }

  remove(userId: string): void {
    if (this.db.prepare('DELETE FROM notify_subscriptions WHERE user_id = ?').run(userId).changes === 0) throw notFound('subscription', userId);
  }
}
