import { z } from 'zod';
import { route } from '../http/route.js';
import { PIN } from './polled-devices.js';
import { inScope, listScope } from '../users/authorize.js';

const tls = z.strictObject({ mode: z.enum(['ca', 'pin', 'insecure']), pin: z.string().regex(PIN, 'SHA-256 as 32 colon-separated hex pairs').optional() });
const host = z.string().min(1).max(253).regex(/^[A-Za-z0-9.:[\]-]+$/, 'a host name or an IP address');
const fields = {
  name: z.string().trim().min(1).max(100),
  host,
  port: z.number().int().min(1).max(65535),
  username: z.string().min(1).max(100),
  password: z.string().min(1).max(1000),
  vaId: z.string().min(1),
  tls,
};
const device = z.strictObject({ ...fields, port: fields.port.default(443), tls: tls.default({ mode: 'ca' }) });
/** A change names only what changes: no defaults fill in the rest. */
const change = z.strictObject(fields).partial().refine((b) => Object.keys(b).length > 0, 'name at least one field to change');
const id = z.strictObject({ id: z.string().min(1).max(100) });

export const ciscoRoutes = [
  route({
    method: 'get', path: '/cisco/devices', summary: 'IOS-XE devices polled over their Smart Licensing REST API (never their passwords)', permission: 'read', scope: ['list'],
    query: z.strictObject({ vaId: z.string().optional() }),
    handler: ({ services, query, vaIds }) => {
      const scope = listScope(services, query.vaId, vaIds);
      return { items: inScope(services.cisco.devices.list(scope.vaId), scope), nextCursor: null };
    },
  }),
  route({
    method: 'post', path: '/cisco/devices', summary: 'Add an IOS-XE device to poll', permission: 'operate', status: 201, scope: ['va-body'],
    body: device,
    handler: ({ services, body, actor }) => services.cisco.devices.add(body, actor),
  }),
  route({
    method: 'post', path: '/cisco/devices/import', summary: 'Add many IOS-XE devices from CSV (name, host, port, username, password, va[, tls, pin]); one bad line adds none', permission: 'operate', status: 201,
    body: z.strictObject({ csv: z.string().min(1).max(16 * 1024 * 1024) }),
    handler: ({ services, body, actor }) => services.cisco.devices.importCsv(body.csv, actor),
  }),
  route({
    method: 'get', path: '/cisco/devices/:id', summary: 'One polled device and its poll status', permission: 'read', scope: ['polled-param'],
    params: id,
    handler: ({ services, params }) => services.cisco.devices.get(params.id),
  }),
  route({
    method: 'patch', path: '/cisco/devices/:id', summary: 'Change a polled device (address, account, password, trust, VA)', permission: 'operate', scope: ['polled-param', 'va-body'],
    params: id,
    body: change,
    handler: ({ services, params, body, actor }) => services.cisco.devices.edit(params.id, body as never, actor),
  }),
  route({
    method: 'delete', path: '/cisco/devices/:id', summary: 'Stop polling a device (its reports stay)', permission: 'operate', scope: ['polled-param'],
    params: id,
    handler: ({ services, params, actor }) => services.cisco.devices.remove(params.id, actor),
  }),
  route({
    method: 'post', path: '/cisco/poll', summary: 'Poll the IOS-XE devices now (or one): close their reports, fetch and store them', permission: 'operate', progress: true,
    body: z.strictObject({ device: z.string().min(1).max(100).optional() }),
    handler: async ({ services, body, actor, progress }) => ({ items: await services.cisco.poller.poll(actor, body.device, progress) }),
  }),
  route({
    method: 'post', path: '/cisco/export', summary: "Write the vendor portal's offline usage upload: every RUM report the portal has not acknowledged, as the devices gave them", permission: 'operate',
    body: z.strictObject({}),
    handler: ({ services, actor }) => services.cisco.portal.export(actor),
  }),
  route({
    method: 'post', path: '/cisco/import-ack', summary: "Read the portal's ACK archive: settle, for the portal, the reports each device file carried, and deliver each ACK to its device", permission: 'operate',
    body: z.strictObject({ file: z.string().min(1).max(4096).refine((f) => f.startsWith('/'), 'an absolute path on the collector host') }),
    handler: ({ services, body, actor }) => services.cisco.acks.import(body.file, actor),
  }),
  route({
    method: 'get', path: '/cisco/acks', summary: "The ACKs of the portal and of Cisco's cloud: delivered to their devices, or still waiting and why", permission: 'read',
    handler: ({ services }) => ({ items: services.cisco.delivery.list(), nextCursor: null }),
  }),
  route({
    method: 'get', path: '/cisco/acks/:from/:uploadId/:devId', summary: 'One ACK as it came, to import on a device Outpost does not poll', permission: 'read',
    params: z.strictObject({ from: z.enum(['portal', 'cssm']), uploadId: z.string().min(1).max(100), devId: z.string().regex(/^\d{1,18}$/, 'a device number') }),
    handler: ({ services, params }) => services.cisco.delivery.content(params.from, params.uploadId, params.devId),
  }),
  route({
    method: 'post', path: '/cisco/devices/:id/test', summary: 'Try a device: reachable, the certificate it presents, trusted, the password works; pin it with confirm', permission: 'operate', scope: ['polled-param'],
    params: id,
    body: z.strictObject({ confirm: z.string().regex(PIN, 'the fingerprint you compared: SHA-256 as 32 colon-separated hex pairs').optional() }),
    handler: ({ services, params, body, actor }) => services.cisco.poller.test(params.id, actor, body.confirm),
  }),
  route({
    method: 'post', path: '/cisco/cloud/credentials', summary: "Set the API client's secret for Cisco's cloud (sealed at rest, never shown again)", permission: 'admin',
    body: z.strictObject({ clientSecret: z.string().min(1).max(4096) }),
    handler: ({ services, body, actor }) => services.cloud.credentials.set(body.clientSecret, actor),
  }),
  route({
    method: 'get', path: '/cisco/accounts', summary: "The smart accounts the Cisco cloud credentials reach, and how the local VAs map onto them", permission: 'read',
    handler: ({ services }) => services.cloud.sync.accountsView(),
  }),
  route({
    method: 'get', path: '/cisco/positions', summary: "License positions last read from Cisco's cloud, beside Outpost's own in-use count", permission: 'read', scope: ['list'],
    query: z.strictObject({ vaId: z.string().optional() }),
    handler: ({ services, query, vaIds }) => {
      const scope = listScope(services, query.vaId, vaIds);
      return { items: inScope(services.cloud.positions.list(scope.vaId), scope), nextCursor: null };
    },
  }),
  route({
    method: 'get', path: '/cisco/license-tags', summary: "License names mapped to entitlement tags, for Cisco cloud positions that carry no tag", permission: 'read',
    handler: ({ services }) => ({ items: services.cloud.positions.tags(), nextCursor: null }),
  }),
  route({
    method: 'post', path: '/cisco/license-tags', summary: 'Map a license name to an entitlement tag (applied at the next positions read)', permission: 'operate',
    body: z.strictObject({ license: z.string().trim().min(1).max(256), tag: z.string().trim().min(1).max(256) }),
    handler: ({ services, body, actor }) => services.cloud.positions.setTag(body.license, body.tag, actor),
  }),
  route({
    method: 'delete', path: '/cisco/license-tags/:license', summary: "Remove a license name's tag mapping", permission: 'operate',
    params: z.strictObject({ license: z.string().min(1).max(256) }),
    handler: ({ services, params, actor }) => services.cloud.positions.setTag(params.license, null, actor),
  }),
];
