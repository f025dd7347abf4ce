import type { Request, Response, NextFunction } from 'express';
import { AppError, forbidden } from '../shared/errors.js';
import { overTls } from './security-headers.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** What a browser may send from any page without a CORS preflight (the Fetch standard's "simple" types). */
const JSON_TYPES = /^application\/(?:[\w.+-]+\+)?json$/;
const XML_TYPES = /^(?:application|text)\/(?:[\w.+-]+\+)?xml$/;
const BYTES_TYPE = /^application\/octet-stream$/;

/**
 * Cross-site requests are refused before any state changes. Loopback and the Host check stop
 * DNS rebinding, but a page in the operator's browser can still send a "simple" request to
 * 127.0.0.1. Browsers label their requests (Origin on every non-GET, Sec-Fetch-Site on modern
 * ones) while the CLI, curl and scripts send neither, so: an Origin must be the collector's
 * own (the origin the request was addressed to) or a configured one; "null" (sandboxed frames,
 * file: pages) is nobody's; and Sec-Fetch-Site must say same-origin or none (typed by the user).
 * Bodies must be of a type a page cannot send without a preflight: JSON, or XML for RUM files.
 */
export function crossSiteGuard(allowedOrigins: readonly string[]) {
  const allowed = new Set(allowedOrigins.map((o) => o.toLowerCase()));
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (SAFE_METHODS.has(req.method)) return next();
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const own = `${overTls(req) ? 'https' : 'http'}://${req.headers.host ?? ''}`.toLowerCase();
      const o = origin.toLowerCase();
      if (o !== own && !allowed.has(o)) {
        return next(forbidden('cross_site_request', `requests from ${JSON.stringify(origin.slice(0, 200))} may not change anything here; only the collector's own origin (${own}) or one listed in http.allowedOrigins may`));
      }
    }
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return next(forbidden('cross_site_request', `a ${String(site).slice(0, 40)} request may not change anything here (Sec-Fetch-Site must be same-origin or none)`));
    }
    next();
  };
}

/**
 * The body types a state-changing route takes: JSON, XML where the route reads RUM files, raw
 * bytes where it takes a bundle. None is one a page may send cross-site without a preflight
 * (the "simple" types are text/plain, multipart/form-data and urlencoded forms).
 */
export function bodyTypeGuard(kind: 'json' | 'xml' | 'bytes') {
  const ok = kind === 'json' ? JSON_TYPES : kind === 'xml' ? XML_TYPES : BYTES_TYPE;
  const expected = kind === 'json' ? 'application/json' : kind === 'xml' ? 'application/xml (or text/xml)' : 'application/octet-stream';
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (SAFE_METHODS.has(req.method) || !hasBody(req)) return next();
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!ok.test(type)) {
      return next(new AppError(415, 'unsupported_media_type', `this route takes ${expected}, not ${JSON.stringify(type || 'no content type')}`));
    }
    // JSON is UTF-8 (RFC 8259): another charset (UTF-7 among them, which the parser would decode) is refused.
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (kind === 'json' && charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return next(new AppError(415, 'unsupported_charset', `JSON is UTF-8: this route does not take charset=${JSON.stringify(charset.slice(0, 40))}`));
    }
    next();
  };
}

function hasBody(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}
