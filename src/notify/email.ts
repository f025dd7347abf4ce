import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import type { Config } from '../config/schema.js';
import { readSecretFile } from '../shared/secret-file.js';

export type EmailConfig = Config['notifications']['email'];

export const emailConfigured = (c: EmailConfig) => c.host !== '';

/** The AUTH password, read at each delivery so that a new one needs no restart; never logged. */
export function smtpPassword(c: EmailConfig): string | undefined {
  return c.user && c.passwordFile ? readSecretFile(c.passwordFile, 'SMTP password file (notifications.email.passwordFile)') : undefined;
}

/** One message through the configured relay: a connection per message (notifications are few). */
export async function sendEmail(c: EmailConfig, msg: { to: string; subject: string; text: string }, timeoutMs: number): Promise<void> {
  const pass = smtpPassword(c);
  const transport = nodemailer.createTransport({
    host: c.host,
    port: c.port,
    secure: c.secure,
    // starttls: refuse a relay that does not offer it; otherwise never try it (a plain relay on the host).
    ...(c.secure ? {} : c.starttls ? { requireTLS: true } : { ignoreTLS: true }),
    ...(c.caFile ? { tls: { ca: readFileSync(c.caFile, 'utf8') } } : {}),
    ...(c.user ? { auth: { user: c.user, ...(pass !== undefined ? { pass } : {}) } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    debug: false,
  });
  try {
    await transport.sendMail({ from: c.from, to: msg.to, subject: msg.subject, text: msg.text });
  } finally {
    transport.close();
  }
}
