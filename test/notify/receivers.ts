import { createHmac, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';

/** Local receivers for the notification tests: every one listens on 127.0.0.1 only. */

export async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Mail { from: string; to: string[]; raw: string; user: string | undefined; secure: boolean }

/** An SMTP relay (smtp-server) that requires AUTH when given a user; with a certificate, STARTTLS is offered and required before AUTH. */
export async function smtpSink(o: { user?: string; password?: string; tls?: { cert: string; key: string } }) {
  const mails: Mail[] = [];
  const authFailures: string[] = [];
  const server = new SMTPServer({
    ...(o.tls ? { key: readFileSync(o.tls.key), cert: readFileSync(o.tls.cert) } : { disabledCommands: ['STARTTLS'], allowInsecureAuth: true }),
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: o.user === undefined,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === o.user && auth.password === o.password) return cb(null, { user: auth.username });
      authFailures.push(auth.username ?? '');
      cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          // Quoted-printable soft line breaks and folded headers undone, so that a long line can be searched.
          raw: Buffer.concat(chunks).toString('utf8').replace(/=\r?\n/g, '').replace(/\r?\n[ \t]+/g, ' '),
          user: session.user as string | undefined,
          secure: session.secure,
        });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as net.AddressInfo).port;
  return { port, mails, authFailures, close: () => new Promise<void>((r) => server.close(() => r())) };
}

export async function udpSyslog() {
  const messages: string[] = [];
  const socket = dgram.createSocket('udp4');
  socket.on('message', (m) => messages.push(m.toString('utf8')));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { port: socket.address().port, messages, close: () => new Promise<void>((r) => socket.close(() => r())) };
}

/** A TCP syslog listener that parses RFC 6587 octet-counted frames, and fails the test on anything else. */
export async function tcpSyslog() {
  const messages: string[] = [];
  const errors: string[] = [];
  const server = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp < 0) break;
        const lenText = buf.subarray(0, sp).toString('ascii');
        if (!/^[1-9]\d{0,8}$/.test(lenText)) return void errors.push(`not octet-counted: ${JSON.stringify(buf.toString('utf8').slice(0, 40))}`);
        const len = Number(lenText);
        if (buf.length < sp + 1 + len) break;
        messages.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
        buf = buf.subarray(sp + 1 + len);
      }
    });
    s.on('end', () => buf.length && errors.push(`a partial frame at the end: ${buf.length} bytes`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, messages, errors, close: () => new Promise<void>((r) => server.close(() => r())) };
}

export interface Hook { body: string; verified: boolean; delivery: string; timestamp: number }

/** An HTTP receiver that checks the HMAC over the exact body and timestamp; `listen(port)` again brings it back on the same port. */
/** `secret` may be read at each request: a test that changes the sink's key changes what the receiver checks with. */
export function webhookReceiver(secret: string | (() => string)) {
  const hooks: Hook[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers['x-outpost-signature'] ?? ''));
      const expected = m ? createHmac('sha256', typeof secret === 'string' ? secret : secret()).update(`${m[1]}.${body}`).digest() : Buffer.alloc(32);
      const verified = !!m && timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
      hooks.push({ body, verified, delivery: String(req.headers['x-outpost-delivery']), timestamp: m ? Number(m[1]) : 0 });
      res.writeHead(verified ? 204 : 401).end();
    });
  });
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  return {
    hooks,
    listen: (port = 0) => new Promise<number>((r) => server.listen(port, '127.0.0.1', () => r((server.address() as net.AddressInfo).port))),
    close: () => new Promise<void>((r) => (server.close(() => r()), sockets.forEach((s) => s.destroy()))),
  };
}

/** Accepts TCP connections and never answers: a sink that hangs. */
export async function hangingServer() {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => (accepted++, sockets.add(s), s.on('error', () => {})));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () => new Promise<void>((r) => (server.close(() => r()), sockets.forEach((s) => s.destroy()))),
  };
}
