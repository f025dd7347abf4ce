import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import helmet from 'helmet';

/** One year: a browser that has seen the collector over HTTPS will not try it over plain HTTP again. */
const HSTS_SECONDS = 31_536_000;

/** Whether the request came over TLS (the HTTPS listener), whatever its headers claim. */
export const overTls = (req: IncomingMessage): boolean => (req.socket as TLSSocket).encrypted === true;

/**
 * The headers on every operator answer. The operator API answers JSON only: nothing in it may be
 * run as a script, framed, sniffed into another type, or read by another site's page. HSTS only
 * on HTTPS (on plain HTTP a browser ignores it), and without includeSubDomains: the collector
 * does not speak for the rest of the site's domain. The device API sets none of these: devices
 * are no browsers, and it is the hot path.
 */
export function securityHeaders(): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  const all = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity: false,
  });
  const hsts = helmet.strictTransportSecurity({ maxAge: HSTS_SECONDS, includeSubDomains: false });
  return (req, res, next) =>
    all(req, res, (err?: unknown) => {
      if (err) return next(err);
      if (overTls(req)) return hsts(req, res, next);
      next();
    });
}
