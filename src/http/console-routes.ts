import { z } from 'zod';
import { route, type Route } from './route.js';
import { CONSOLE_FILES, consoleBuild, type ConsoleFile } from './console-assets.js';
import { AppError } from '../shared/errors.js';

/**
 * The page's own policy: scripts, styles and images from this origin only, no inline script or
 * style element, no plugin, no frame, and fetches to the collector alone. Every other answer
 * keeps the API's default-src 'none'.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const buildParam = z.strictObject({ build: z.string().max(64) });

/** The console's page and each of its files, served at the root, public: the data comes from the API, which checks roles. */
export const consoleRoutes: Route[] = [
  route({
    method: 'get', path: '/', at: 'root', summary: 'The operator console (sign-in page for a caller without a session)', permission: 'public', contentType: 'text/html; charset=utf-8',
    handler: ({ principal, setHeader }) => {
      const b = consoleBuild();
      setHeader('content-security-policy', CONSOLE_CSP);
      // The page names the build's files: it must be asked for again after an upgrade.
      setHeader('cache-control', 'no-cache');
      // What kind of caller loaded it, so the page asks only routes it can call (no 401 to start with).
      return b.html.replace('{{principal}}', principal?.kind ?? 'none');
    },
  }),
  ...(Object.keys(CONSOLE_FILES) as ConsoleFile[]).map((name) =>
    route({
      method: 'get', path: `/console/:build/${name}`, at: 'root', summary: `The console's ${name}`, permission: 'public', params: buildParam, contentType: CONSOLE_FILES[name],
      handler: ({ params, setHeader }) => {
        const b = consoleBuild();
        if (params.build !== b.id) throw new AppError(404, 'not_found', `the console's build ${params.build} is not this collector's (${b.id}): load / again`);
        setHeader('cache-control', 'public, max-age=31536000, immutable');
        return b.files.get(name)!;
      },
    }),
  ),
];
