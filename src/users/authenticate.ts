import type { NextFunction, Request, Response } from 'express';
import type { Services } from '../services.js';
import { unauthorized } from '../shared/errors.js';
import type { Principal } from './roles.js';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal | null;
  }
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
      // Before the first user, the operator API is the host's alone (loopback, checked earlier).
      req.principal = services.users.any() ? null : { actor: 'operator', kind: 'loopback', userId: null, grants: [{ role: 'admin', vaId: null }] };
      next();
    } catch (e) {
      next(e);
    }
  };
}
