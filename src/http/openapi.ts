import { z } from 'zod';
import type { Route } from './route.js';

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' }, requestId: { type: 'string', description: 'The X-Request-Id of the request, as its log line carries it' } },
      required: ['code', 'message', 'details'],
    },
  },
};

/** The OpenAPI document, derived from the same route table as the express routes. */
export function openApiDocument(routes: Route[], version: string): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = (r.at === 'root' ? '' : '/api/v1') + r.path.replace(/:(\w+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const name of r.path.match(/:(\w+)/g) ?? []) {
      parameters.push({ name: name.slice(1), in: 'path', required: true, schema: { type: 'string' } });
    }
    if (r.query) {
      const js = z.toJSONSchema(r.query, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: 'query', required: js.required?.includes(name) ?? false, schema });
      }
    }
    (paths[path] ??= {})[r.method] = {
      summary: r.summary,
      'x-permission': r.permission,
      parameters,
      ...(r.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) } } } }
        : r.bodyType === 'text'
          ? { requestBody: { required: true, content: { 'application/xml': { schema: { type: 'string' } } } } }
          : r.bodyType === 'bytes'
            ? { requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } }
            : {}),
      responses: {
        [String(r.status ?? 200)]: r.contentType
          ? { description: 'success', content: { [r.contentType]: { schema: { type: 'string', ...(r.contentType.startsWith('application/octet-stream') ? { format: 'binary' } : {}) } } } }
          : { description: 'success' },
        default: { description: 'error', content: { 'application/json': { schema: errorSchema } } },
      },
    };
  }
  return { openapi: '3.1.0', info: { title: 'Outpost operator API', version }, paths };
}
