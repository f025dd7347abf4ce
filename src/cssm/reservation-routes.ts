import { z } from 'zod';
import { route } from '../http/route.js';
import { inScope, listScope } from '../users/authorize.js';

const udi = z.string().trim().min(3).max(130).regex(/^[^:\s]+:[^:\s]+$/, 'PID:SERIAL, e.g. C9300-24P:FOC1234X0AB');
/** A code a device printed: one line of printable text. */
const code = (what: string) => z.string().trim().min(1).max(8192).regex(/^[\x21-\x7e]+$/, `${what} as the device printed it: one word of printable characters`);
const license = z.strictObject({
  tag: z.string().trim().min(1).max(256).regex(/^\S+$/, 'an entitlement tag, without spaces'),
  quantity: z.number().int().min(1).max(1_000_000),
});
const hostname = z.string().trim().min(1).max(253).regex(/^[\x21-\x7e]+$/, 'a host name without spaces').optional();

export const reservationRoutes = [
  route({
    method: 'post', path: '/cisco/reservations', summary: "Reserve licenses with Cisco's cloud: a device's reservation request code (or a known UDI) becomes an authorization code, kept and pushed to a polled device", permission: 'operate', status: 201, scope: ['va-body'],
    body: z.strictObject({
      vaId: z.string().min(1).max(100),
      requestCode: code('the reservation request code').optional(),
      udi: udi.optional(),
      licenses: z.array(license).min(1, 'name at least one license to reserve').max(100),
      hostname,
    }),
    handler: ({ services, body, actor }) => services.cloud.reservations.reserve(body, actor),
  }),
  route({
    method: 'post', path: '/cisco/reservations/return', summary: "Return a device's reserved licenses to Cisco's cloud with the return code it printed", permission: 'operate', status: 201, scope: ['va-body'],
    body: z.strictObject({ vaId: z.string().min(1).max(100), udi, returnCode: code('the return code'), hostname }),
    handler: ({ services, body, actor }) => services.cloud.reservations.return(body, actor),
  }),
  route({
    method: 'get', path: '/cisco/reservations', summary: "Reservations and returns made with Cisco's cloud: their authorization codes and whether each reached its device", permission: 'read', scope: ['list'],
    query: z.strictObject({ vaId: z.string().optional() }),
    handler: ({ services, query, vaIds }) => {
      const scope = listScope(services, query.vaId, vaIds);
      return { items: inScope(services.cloud.reservations.list(scope.vaId), scope), nextCursor: null };
    },
  }),
];
