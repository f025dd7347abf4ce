import type { Request, Response, NextFunction } from 'express';
import { forbidden } from '../shared/errors.js';
import { overTls } from './security-headers.js';

const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$/i;

export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

/**
 * Where the operator API answers. Over plain HTTP, only on loopback, and only to a Host header
 * that names loopback: a web page cannot reach it through DNS rebinding (its requests carry the
 * attacker's host name), and a device on the network cannot reach it at all. Over HTTPS, other
 * addresses too once users exist (every caller then authenticates); before the first user, the
 * collector is its host's alone.
 */
export const loopbackOnly = (hasUsers: () => boolean) => (req: Request, _res: Response, next: NextFunction): void => {
  if (!isLoopbackAddress(req.socket.remoteAddress)) {
    if (overTls(req)) {
      if (hasUsers()) return next();
      return next(forbidden('users_and_roles_needed', 'the operator API over HTTPS answers other addresses only once users and roles exist (outpost user add); until then use it on the collector host (loopback) or through the local socket'));
    }
    return next(forbidden('loopback_only', 'the operator API over plain HTTP answers only on loopback; from another address, use HTTPS (https.certFile, https.keyFile) once users and roles are configured'));
  }
  if (!LOOPBACK_HOST.test(req.headers.host ?? '')) {
    return next(forbidden('bad_host', `the Host header must name loopback (localhost, 127.0.0.1 or [::1]), not ${JSON.stringify(req.headers.host ?? '')}`));
  }
  next();
};
