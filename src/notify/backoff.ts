/**
 * When a notification whose delivery failed is tried again: after the n-th failed attempt, the
 * n-th delay of the schedule, the last one repeated; null once the next try would come after the
 * notification was written plus the give-up span (then it is marked failed).
 */
export function nextAttemptAt(schedule: readonly number[], attempts: number, now: number, createdAt: number, giveUpMs: number): number | null {
  const delayMs = schedule[Math.min(attempts - 1, schedule.length - 1)]! * 1000;
  const at = now + delayMs;
  return at - createdAt > giveUpMs ? null : at;
}
