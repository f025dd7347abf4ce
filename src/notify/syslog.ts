import dgram from 'node:dgram';
import net from 'node:net';
import type { NotificationRow } from './outbox.js';
import { summary } from './render.js';

/** RFC 5424 severities: critical 2 (crit), warning 4, info 6; a resolution is a notice (5). */
const LEVEL = { critical: 2, warning: 4, info: 6 } as const;
/** The SD-ID's enterprise number is 32473, the one RFC 5612 reserves for documentation and examples. */
const SD_ID = 'outpost@32473';

const sdValue = (v: string) => v.replace(/[\\"\]]/g, (c) => `\\${c}`);
/** A header field: printable ASCII without spaces, at most `max` characters, '-' when empty. */
const field = (v: string, max: number) => v.replace(/[^!-~]/g, '_').slice(0, max) || '-';

/** One RFC 5424 message (without transport framing). */
export function syslogMessage(n: NotificationRow, o: { facility: number; hostname: string; now: number; procId: number }): string {
  const level = n.event === 'resolved' ? 5 : LEVEL[n.severity];
  const params: [string, string | number | null][] = [
    ['id', n.id], ['event', n.event], ['kind', n.kind], ['subject', n.subject], ['severity', n.severity], ['count', n.count], ['alertId', n.alert_id], ['vaId', n.va_id],
  ];
  const sd = `[${SD_ID}${params.filter(([, v]) => v !== null).map(([k, v]) => ` ${k}="${sdValue(String(v))}"`).join('')}]`;
  // The BOM marks MSG as UTF-8 (RFC 5424 §6.4).
  return `<${o.facility * 8 + level}>1 ${new Date(o.now).toISOString()} ${field(o.hostname, 255)} outpost ${o.procId} ${field(n.kind, 32)} ${sd} \uFEFF${summary(n)}`;
}

/** RFC 6587 octet counting: the message's length in bytes, a space, the message. */
export const octetCounted = (msg: string): Buffer => {
  const body = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `), body]);
};

export interface SyslogTarget { host: string; port: number; transport: 'udp' | 'tcp' }

/** Sends one message; over UDP "sent" means handed to the network, over TCP written and the connection closed cleanly. */
export function sendSyslog(t: SyslogTarget, msg: string, timeoutMs: number): Promise<void> {
  return t.transport === 'udp' ? sendUdp(t, msg) : sendTcp(t, msg, timeoutMs);
}

function sendUdp(t: SyslogTarget, msg: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(t.host) ? 'udp6' : 'udp4');
    socket.once('error', (e) => (socket.close(), reject(e)));
    socket.send(Buffer.from(msg, 'utf8'), t.port, t.host, (e) => {
      socket.close();
      if (e) reject(e);
      else resolve();
    });
  });
}

function sendTcp(t: SyslogTarget, msg: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: t.host, port: t.port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`syslog ${t.host}:${t.port}: no progress within ${timeoutMs} ms`)));
    socket.once('error', reject);
    socket.once('connect', () => socket.end(octetCounted(msg)));
    socket.once('close', (hadError) => hadError || resolve());
    // A receiver that keeps the connection open after our end still has the message.
    socket.once('finish', () => resolve());
  });
}
