import type { Db } from '../store/open.js';

export interface Policy {
  /** 0 until an upstream sends one: the configured default. */
  version: number;
  reportingIntervalDays: number;
  ackDueDays: number;
}

/** The reporting policy devices are told at registration. The upstream will own it; config seeds it. */
export class PolicyService {
  private cached: Policy | undefined;
  constructor(
    private db: Db,
    private defaults: { reportingIntervalDays: number; ackDueDays: number },
  ) {}

  /** Applies a policy from the upstream unless it is older than the one held. */
  apply(p: Policy): boolean {
    if (p.version <= this.get().version) return false;
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('policy', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(JSON.stringify(p));
    this.cached = undefined; // re-read after commit: a rolled-back apply must not linger here
    return true;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  get(): Policy {
    if (!this.cached) {
      const row = this.db.prepare("SELECT value FROM meta WHERE key = 'policy'").get() as { value: string } | undefined;
      this.cached = row ? (JSON.parse(row.value) as Policy) : { version: 0, ...this.defaults };
    }
    return this.cached;
  }
}
