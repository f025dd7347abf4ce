import type { z } from 'zod';
import type { Services } from '../services.js';
import type { Principal } from '../users/roles.js';
import type { OnProgress } from '../shared/progress.js';

/**
 * Permissions the users-and-roles issue will grant by role; every route names the one it needs.
 * `public`: anyone who reaches the listener (health, the API's description, the collector's identity).
 * `self`: anyone signed in, about themselves (who am I, my API tokens).
 * `read-or-loopback`: `read`, or no credentials at all from the collector's host over TCP (a
 * Prometheus beside it scrapes without a token); for /metrics alone.
 */
export type Permission = 'public' | 'self' | 'read' | 'read-or-loopback' | 'operate' | 'admin';

/**
 * How a route's virtual account is found, for the roles held on one VA (va-admin, va-viewer):
 * `va-param` params.id names the VA; `va-body` body.vaId (when the body names one); `va-query`
 * query.vaId; `device-param` params.id is a device; `polled-param` params.id a polled IOS-XE
 * device; `token-param` params.id a registration token; `list` an optional query.vaId, and the
 * handler lists only the VAs in `vaIds`. A route with none is global: VA roles may not call it.
 */
export type ScopeSource = 'va-param' | 'va-body' | 'va-query' | 'device-param' | 'polled-param' | 'token-param' | 'list';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** Who acts: 'cli' over the local socket, 'operator' over loopback HTTP (until users land). */
  actor: string;
  services: Services;
  /** The collector's version, as the OpenAPI document names it. */
  version: string;
  /** The VAs the caller may see, for a `list` route: null, every VA. */
  vaIds: string[] | null;
  /** Who asks (null on a public route called without credentials). */
  principal: Principal | null;
  /** The caller's address ('socket' over the local socket): what failed logins are counted by, besides the account. */
  remote: string;
  /** Whether the request came over TLS (a session cookie is then marked Secure). */
  secure: boolean;
  /** Sets a header of the answer (a session's cookie). */
  setHeader: (name: string, value: string) => void;
  /**
   * Reports how far a long operation has got: streamed as NDJSON lines to a caller that asks
   * for application/x-ndjson on a route declared with `progress`; a no-op otherwise.
   */
  progress: OnProgress;
}

/**
 * One declaration per operator route: the express routes, the OpenAPI document and (later)
 * the role matrix are all derived from these, so they cannot disagree.
 */
export interface Route<P = any, Q = any, B = any> {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string; // express syntax, relative to /api/v1 (or to / with `at: 'root'`)
  /** 'root' for the few routes outside the versioned API (/healthz). */
  at?: 'api' | 'root';
  summary: string;
  permission: Permission;
  /** Where the route's VA is found, for VA-scoped roles (see ScopeSource); absent: a global route. */
  scope?: ScopeSource[];
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /**
   * 'text' takes the raw body as a Buffer, its bytes untouched (RUM XML uploads), instead of JSON.
   * 'bytes' takes application/octet-stream streamed to a file (a bundle), bounded by `upload`;
   * the handler's body is then an UploadedFile (http/upload.ts).
   */
  bodyType?: 'json' | 'text' | 'bytes';
  /** For a 'bytes' route: how large an upload may be, and the setting that says so. */
  upload?: (services: Services) => { limit: number; setting: string; dir: string; name: () => string };
  status?: number;
  /** The handler returns this content type's text, sent as is (Prometheus metrics), rather than JSON. */
  contentType?: string;
  /** A long operation that may stream its progress as NDJSON (when the caller asks for it). */
  progress?: boolean;
  handler: (input: RouteInput<P, Q, B>) => unknown;
}

export const route = <P, Q, B>(r: Route<P, Q, B>): Route<P, Q, B> => r;
