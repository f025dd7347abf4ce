import http from 'node:http';
import { existsSync, chmodSync, unlinkSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/logger.js';
import type { Services } from '../services.js';
import { createDeviceHandler } from '../device-api/handler.js';
import { inlineVerifier, type SignatureVerifier } from '../device-api/verifier.js';
import { createOperatorApp } from '../http/operator-app.js';
import { answerClientErrors, combinedHandler, listen } from '../http/server.js';
import { BodyBudget, limitConnectionsPerAddress } from '../http/limits.js';
import { deviceRateLimits } from '../http/rate-limit.js';
import { createTlsListener, httpsWanted, readTlsPair, type TlsListener } from '../http/tls.js';
import { VERSION } from './version.js';


/** The collector's whole request handler (device API and operator API), as tests and the server use it. */
export function createRequestHandler(services: Services, verifier: SignatureVerifier = inlineVerifier()) {
  const c = services.config;
  const device = createDeviceHandler({
    ...services,
    verifier,
    clock: services.systemClock,
    budget: new BodyBudget(c.http.maxBufferedBytes),
    rate: deviceRateLimits(c.rate, () => services.systemClock.now()),
    limits: {
      maxBodyBytes: c.http.maxBodyBytes,
      signatureWindowSeconds: c.device.signatureWindowSeconds,
      maxReportsPerBatch: c.device.maxReportsPerBatch,
      maxMeasurementsPerReport: c.device.maxMeasurementsPerReport,
    },
  });
  services.readiness.watchWorkers(verifier);
  return combinedHandler(services.deviceRequests.wrap(services.metrics.timed(device)), createOperatorApp(services, { transport: 'tcp', version: VERSION }));
}

/**
 * The collector's TCP server as production runs it (tests that attack its limits build the
 * same): the whole handler, a bounded time for a request to arrive, and a bounded number of
 * connections per address.
 */
export function createTcpServer(services: Services, verifier?: SignatureVerifier, handler = createRequestHandler(services, verifier)): http.Server {
  const { http: h } = services.config;
  const server = http.createServer(serverTimeouts(h), handler);
  limitConnectionsPerAddress(server, h.maxConnectionsPerAddress);
  answerClientErrors(server);
  return server;
}

/** The HTTP and HTTPS listeners' timeouts. */
function serverTimeouts(h: Config['http']) {
  return {
    keepAliveTimeout: 65_000,
    // A request's headers and body must arrive within this; a stalled body is cut (408).
    requestTimeout: h.bodyTimeoutSeconds * 1000,
    headersTimeout: Math.min(h.bodyTimeoutSeconds * 1000, 60_000),
    // How often Node checks those timeouts: a second, so a limit in seconds means seconds.
    connectionsCheckingInterval: 1000,
    // A TLS handshake that stalls holds a connection as a stalled body would.
    handshakeTimeout: Math.min(h.bodyTimeoutSeconds * 1000, 60_000),
  };
}

/**
 * The HTTPS listener when the config asks for one, else undefined. The key's mode and the pair
 * are checked here, before anything listens: a start that must refuse them opens nothing.
 */
export function createHttpsListener(config: Config, handler: http.RequestListener, logger: Logger): TlsListener | undefined {
  return httpsWanted(config.https) ? createTlsListener(handler, config.https, readTlsPair(config.https), serverTimeouts(config.http), logger) : undefined;
}

/** The local socket's server: the operator API alone, for the CLI on this host. */
export function createSocketServer(services: Services): http.Server {
  return http.createServer(createOperatorApp(services, { transport: 'socket', version: VERSION }));
}

/** Listens on the local socket. The caller holds the database lock, so a socket file left here belongs to a process that is gone. */
export async function listenOnSocket(server: http.Server, socketPath: string): Promise<void> {
  if (existsSync(socketPath)) unlinkSync(socketPath);
  const umask = process.umask(0o177); // the socket is born 0600: only this user may drive the collector
  try {
    await listen(server, socketPath);
  } finally {
    process.umask(umask);
  }
  chmodSync(socketPath, 0o600);
}
