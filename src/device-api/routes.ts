/**
 * How a device route is authenticated: `device`, a request signed by a registered device's key
 * (the device is looked up from the headers before the body is read); `registration`, a request
 * signed by the key it registers, with a registration token; `public`, nothing (what a device
 * needs before it registers).
 */
export type DeviceAuthKind = 'device' | 'registration' | 'public';

export interface DeviceRoute {
  method: 'GET' | 'POST';
  path: string;
  auth: DeviceAuthKind;
  summary: string;
}

/** The one table of the device API: the handler serves exactly these, and refuses everything else. */
export const deviceApiRoutes: readonly DeviceRoute[] = [
  { method: 'GET', path: '/device/v1/collector', auth: 'public', summary: "The collector's id and public key, which a device's signatures bind" },
  { method: 'POST', path: '/device/v1/register', auth: 'registration', summary: 'Register with a token and a public key' },
  { method: 'POST', path: '/device/v1/report', auth: 'device', summary: 'One usage report' },
  { method: 'POST', path: '/device/v1/reports', auth: 'device', summary: 'A batch of usage reports' },
  { method: 'POST', path: '/device/v1/rekey', auth: 'device', summary: 'Replace the device key, with a proof of the new one' },
  { method: 'GET', path: '/device/v1/acks', auth: 'device', summary: "The upstream's ACKs of the device's reports, signed by the collector" },
];

export const deviceRouteKey = (method: string, path: string) => `${method} ${path}`;
