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

  get(): Policy {
    if (!this.cached) {
      const row = this.db.prepare("SELECT value FROM meta WHERE key = 'policy'").get() as { value: string } | undefined;
      this.cached = row ? (JSON.parse(row.value) as Policy) : { version: 0, ...this.defaults };
    }
    return this.cached;
  }
}
