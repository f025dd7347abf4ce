import { z } from 'zod';
import { route } from '../http/route.js';
import { labelColour, labelDescription, labelName, labelQuery } from './schema.js';

const nameParam = z.strictObject({ name: z.string().min(1).max(100) });
const isoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const ids = z.array(z.string().min(1).max(100)).min(1).max(1000);

/** The device list's filters (GET /devices), as a bulk change takes them. */
const deviceFilter = z.strictObject({
  q: z.string().trim().min(1).max(200).optional(),
  vaId: z.string().min(1).optional(),
  status: z.enum(['active', 'stale', 'deregistered']).optional(),
  source: z.enum(['registered', 'rum']).optional(),
  pid: z.string().min(1).max(100).optional(),
  seenBefore: isoTime.optional(),
  seenAfter: isoTime.optional(),
  pendingRekey: z.boolean().optional(),
  label: labelQuery.optional(),
});

const targets = z.strictObject({
  devices: ids.optional(),
  deviceFilter: deviceFilter.optional(),
  lines: ids.optional(),
  lineFilter: z.strictObject({ vaId: z.string().min(1).optional(), tag: z.string().min(1).max(300).optional() }).optional(),
});

/**
 * Defining labels is collector-wide (no scope: operators and admins); attaching and detaching
 * is allowed to a VA's operators on that VA's devices and lines (the `list` scope gives the
 * handler the caller's VAs, which the service checks in its transaction).
 */
export const labelRoutes = [
  route({
    method: 'get', path: '/labels', summary: 'List labels, with how many devices and entitlement lines (among those you may see) carry each',
    permission: 'read', scope: ['list'],
    handler: ({ services, vaIds }) => ({ items: services.labels.list(vaIds), nextCursor: null }),
  }),
  route({
    method: 'get', path: '/labels/:name', summary: 'One label, by name (any case) or id', permission: 'read', scope: ['list'], params: nameParam,
    handler: ({ services, params, vaIds }) => services.labels.get(params.name, vaIds),
  }),
  route({
    method: 'post', path: '/labels', summary: 'Create a label: a name unique without regard to case, a colour #rrggbb, a description', permission: 'operate', status: 201,
    body: z.strictObject({ name: labelName, colour: labelColour, description: labelDescription.optional() }),
    handler: ({ services, body, actor }) => services.labels.create(body, actor),
  }),
  route({
    method: 'patch', path: '/labels/:name', summary: 'Rename, recolour or describe a label', permission: 'operate', params: nameParam,
    body: z
      .strictObject({ name: labelName.optional(), colour: labelColour.optional(), description: labelDescription.optional() })
      .refine((b) => b.name !== undefined || b.colour !== undefined || b.description !== undefined, 'name, colour or description: name at least one'),
    handler: ({ services, params, body, actor }) => services.labels.update(params.name, body, actor),
  }),
  route({
    method: 'delete', path: '/labels/:name', summary: 'Delete a label; it is detached from every device and line at once', permission: 'operate', params: nameParam,
    handler: ({ services, params, actor }) => services.labels.remove(params.name, actor),
  }),
  route({
    method: 'post', path: '/labels/:name/attach',
    summary: 'Attach a label to devices or entitlement lines: by id (devices, lines) or by filter (deviceFilter: the device list\'s filters; lineFilter: vaId, tag), in one transaction, within your VAs',
    permission: 'operate', scope: ['list'], params: nameParam, body: targets,
    handler: ({ services, params, body, vaIds, actor }) => services.labels.attach(params.name, body, vaIds, actor),
  }),
  route({
    method: 'post', path: '/labels/:name/detach', summary: 'Detach a label from devices or entitlement lines, by id or by filter as attach takes them',
    permission: 'operate', scope: ['list'], params: nameParam, body: targets,
    handler: ({ services, params, body, vaIds, actor }) => services.labels.detach(params.name, body, vaIds, actor),
  }),
];
