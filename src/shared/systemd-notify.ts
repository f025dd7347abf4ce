import { execFile } from 'node:child_process';
import type { Logger } from './logger.js';

/**
 * Tells systemd the service is ready (Type=notify), once it listens and its first checks have
 * run. Node has no datagram Unix sockets, so the notification goes through systemd-notify,
 * which the unit allows with NotifyAccess=all. Outside systemd (no NOTIFY_SOCKET) it does nothing.
 */
export function notifyReady(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!env.NOTIFY_SOCKET) return Promise.resolve();
  return new Promise((resolve) => {
    execFile('systemd-notify', ['--ready', `--pid=${process.pid}`], { env, timeout: 5_000 }, (err) => {
      if (err) logger.warn('systemd-notify --ready failed: systemd will wait for its start timeout', { error: err.message });
      resolve();
    });
  });
}
