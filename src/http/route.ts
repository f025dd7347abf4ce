import type { z } from 'zod';
import type { Services } from '../services.js';

/**
 * Permissions the users-and-roles issue will grant by role; every route names the one it needs.
 * `public`: anyone who reaches the listener (health, the API's description, the collector's identity).
 */
export type Permission = 'public' | 'read' | 'operate' | 'admin';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** Who acts: 'cli' over the local socket, 'operator' over loopback HTTP (until users land). */
  actor: string;
  services: Services;
  /** The collector's version, as the OpenAPI document names it. */
  version: string;
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
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** 'text' takes the raw body as a Buffer, its bytes untouched (RUM XML uploads), instead of JSON. */
  bodyType?: 'json' | 'text';
  status?: number;
  handler: (input: RouteInput<P, Q, B>) => unknown;
}

export const route = <P, Q, B>(r: Route<P, Q, B>): Route<P, Q, B> => r;
