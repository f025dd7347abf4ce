import { z } from 'zod';
import { route } from '../http/route.js';

export const rumRoutes = [
  route({
    method: 'post', path: '/usage/rum', summary: 'Import a RUM file (XML body, UTF-8, kept byte for byte) into a virtual account', permission: 'operate', scope: ['va-query'],
    bodyType: 'text',
    query: z.strictObject({
      vaId: z.string().min(1),
      skipInvalid: z.enum(['true', 'false']).transform((s) => s === 'true').default(false),
      fileName: z.string().max(255).optional(),
      overrideSigned: z.enum(['true', 'false']).transform((s) => s === 'true').default(false),
    }),
    handler: ({ services, query, body, actor }) =>
      services.rum.import(Buffer.isBuffer(body) ? body : Buffer.alloc(0), {
        vaId: query.vaId, skipInvalid: query.skipInvalid, actor, fileName: query.fileName, maxElements: services.config.rum.maxElements,
        maxFutureSkewMs: services.config.rum.maxFutureSkewSeconds * 1000,
        staleAfterDays: services.config.device.staleAfterDays, overrideSigned: query.overrideSigned,
      }),
  }),
];
