import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { startFakeCssm, type FakeCssmOptions, type FaultSpec } from './fake-cssm.js';

/*
 * The fake CSSM as a process of its own (see fake-cssm-process.ts): options come as one JSON
 * argument, the addresses and credentials go out as one JSON line on stdout, and the test
 * drives the fake through a small control server on 127.0.0.1.
 */

interface WireFault extends Omit<FaultSpec, 'path'> {
  path: string | { re: string; flags?: string };
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as FakeCssmOptions;
  const fake = await startFakeCssm(o);

  const read = (req: IncomingMessage) =>
    new Promise<unknown>((resolve, reject) => {
      let s = '';
      req.on('data', (c: Buffer) => (s += c));
      req.on('end', () => {
        try {
          resolve(s ? JSON.parse(s) : null);
        } catch (e) {
          reject(e as Error);
        }
      });
    });

  const control = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body ?? null));
      };
      try {
        const key = `${req.method} ${req.url}`;
        const body = await read(req);
        switch (key) {
          case 'GET /uploads':
            return send(200, fake.uploads());
          case 'GET /duplicates':
            return send(200, fake.duplicates());
          case 'GET /refused-duplicates':
            return send(200, fake.refusedDuplicates());
          case 'GET /requests':
            return send(200, fake.requests());
          case 'GET /reservations':
            return send(200, fake.reservations());
          case 'POST /expire-tokens':
            fake.expireTokens();
            return send(200, {});
          case 'POST /licenses':
            fake.setLicenses(body as Parameters<typeof fake.setLicenses>[0]);
            return send(200, {});
          case 'POST /fault': {
            const f = body as WireFault;
            fake.fault({ ...f, path: typeof f.path === 'string' ? f.path : new RegExp(f.path.re, f.path.flags) });
            return send(200, {});
          }
          default:
            return send(404, { error: `no control ${key}` });
        }
      } catch (e) {
        send(400, { error: (e as Error).message });
      }
    })();
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const port = (control.address() as { port: number }).port;

  const stop = () => {
    control.close();
    void fake.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  process.stdout.write(
    `${JSON.stringify({
      ready: 'fake-cssm',
      url: fake.url,
      tokenUrl: fake.tokenUrl,
      clientId: fake.clientId,
      clientSecret: fake.clientSecret,
      domain: fake.domain,
      accountId: fake.accountId,
      virtualAccounts: fake.virtualAccounts,
      ca: fake.ca,
      control: `http://127.0.0.1:${port}`,
    })}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`fake-cssm failed to start: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
