import { createHmac } from 'node:crypto';
import { request } from 'undici';

export const SIGNATURE_HEADER = 'x-outpost-signature';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp lets a receiver refuse a replay. */
export function signature(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** Posts the JSON body; any 2xx is delivered, anything else (or no answer within the bound) is an error to retry. */
export async function postWebhook(url: string, body: string, secret: string, o: { now: number; timeoutMs: number; deliveryId: number }): Promise<void> {
  const res = await request(url, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'outpost-notify',
      [SIGNATURE_HEADER]: signature(secret, body, Math.floor(o.now / 1000)),
      // The same across retries: a receiver that saw it already may drop it.
      'x-outpost-delivery': String(o.deliveryId),
    },
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    signal: AbortSignal.timeout(o.timeoutMs),
  });
  const text = await res.body.text().catch(() => '');
  if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`webhook answered ${res.statusCode}${text ? `: ${text.slice(0, 200)}` : ''}`);
}
