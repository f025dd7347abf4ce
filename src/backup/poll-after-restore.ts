import type { Services } from '../services.js';

const FLAG = 'restore.poll_after_start';

/**
 * At the first start after a restore, IOS-XE devices are polled at once: they hold what they
 * reported since the backup, which the restored store lacks. The mark the restore left is
 * removed only once that poll has run (a device that failed in it says so in its status, and
 * the daily poll takes it up): a poll cut short by a stop runs again at the next start.
 */
export function pollAfterRestore(services: Pick<Services, 'db' | 'cisco'>): Promise<void> | null {
  const db = services.db;
  if (!db.prepare('SELECT 1 FROM meta WHERE key = ?').get(FLAG)) return null;
  return services.cisco.poller.poll('restore').then(async () => {
    db.prepare('DELETE FROM meta WHERE key = ?').run(FLAG);
    await services.cisco.delivery.deliver('restore');
  });
}
