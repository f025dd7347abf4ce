import { z } from 'zod';
import { route } from '../http/route.js';

export const timeRoutes = [
  route({
    method: 'get', path: '/time', summary: 'System time, trusted time, floor, time zone and open clock alerts', permission: 'read',
    handler: ({ services }) => ({ zone: services.config.time.zone, ...services.time.status() }),
  }),
  route({
    method: 'post', path: '/time/confirm', summary: 'Confirm the system clock is right: expiry checks believe it again (an event)', permission: 'admin',
    body: z.strictObject({}),
    handler: ({ services, actor }) => ({ zone: services.config.time.zone, ...services.time.confirm(actor) }),
  }),
  route({
    method: 'post', path: '/time/reset-floor', summary: 'Set the trusted-time floor to a given time, to recover from a wrong one (an event)', permission: 'admin',
    body: z.strictObject({ to: z.iso.datetime({ offset: true }) }),
    handler: ({ services, body, actor }) => ({ zone: services.config.time.zone, ...services.time.resetFloor(Date.parse(body.to), actor) }),
  }),
];
