import type { NextFunction, Request, Response } from 'express';
import type { Services } from '../services.js';
import { AppError, unauthorized } from '../shared/errors.js';
import { CSRF_HEADER, SESSION_COOKIE } from './sessions.js';
import type { Principal } from './roles.js';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal | null;
    /** Why a session cookie sent was not taken (ended, idle, expired). */
    authProblem?: AppError;
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The value of one cookie of the request, if sent. */
export function cookie(req: Request, name: string): string | undefined {
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const printableName = (s: string) => s.replace(/[^\w.@-]/g, '?').slice(0, 64) || '?';

/**
 * Who asks. The local socket is the host's own (mode 0600 is its credential): it acts as admin,
 * recording the OS user the CLI names, marked self-reported. Over TCP, an API token (Bearer);
 * with no user configured yet, loopback alone, as before users existed.
 */
export function authenticate(services: Services, transport: 'tcp' | 'socket') {
  return (req: Request, _res: Response, next: NextFunction): void => {
    try {
      if (transport === 'socket') {
        const os = printableName(String(req.headers['x-outpost-os-user'] ?? 'unknown'));
        req.principal = { actor: `cli:${os} (self-reported)`, kind: 'socket', userId: null, grants: [{ role: 'admin', vaId: null }] };
        return next();
      }
      const auth = req.headers.authorization;
      if (auth !== undefined) {
        const m = /^Bearer\s+(\S+)$/i.exec(auth);
        if (!m) throw unauthorized('bad_authorization', 'the Authorization header takes "Bearer <API token>"');
        req.principal = services.users.authenticateToken(m[1]!);
        return next();
      }
      const sessionSecret = cookie(req, SESSION_COOKIE);
      if (sessionSecret) {
        try {
          const p = services.sessions.principal(sessionSecret);
          // A browser sends the cookie with any request to this origin: a change must also carry
          // the CSRF token, which only a page of this origin can read.
          if (!SAFE.has(req.method)) services.sessions.checkCsrf(p.session, req.headers[CSRF_HEADER]);
          req.principal = p;
          return next();
        } catch (e) {
          if (!(e instanceof AppError) || e.status !== 401) throw e;
          req.authProblem = e;
        }
      }
      // Before the first user, the operator API is the host's alone (loopback, checked earlier).
      req.principal = services.users.any() ? null : { actor: 'operator', kind: 'loopback', userId: null, grants: [{ role: 'admin', vaId: null }] };
      next();
    } catch (e) {
      next(e);
    }
  };
}
