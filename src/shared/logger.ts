import type { Writable } from 'node:stream';
import winston from 'winston';

export type Logger = winston.Logger;

/** `auto`: JSON under a service manager or when the output is not a terminal, text on a terminal. */
export type LogFormat = 'json' | 'text' | 'auto';

export interface LoggerOptions {
  format?: LogFormat;
  silent?: boolean;
  /** Where the lines go (stdout unless given): tests read the lines a real transport writes. */
  stream?: Writable;
  env?: NodeJS.ProcessEnv;
  isTTY?: boolean;
}

/**
 * JSON when anything but a person reads the output: systemd sets JOURNAL_STREAM (stdout is the
 * journal) and INVOCATION_ID (any unit) for its services, and production or a pipe means a
 * log shipper. A person at a terminal gets text.
 */
export function resolveFormat(format: LogFormat, env: NodeJS.ProcessEnv = process.env, isTTY = process.stdout.isTTY === true): 'json' | 'text' {
  if (format !== 'auto') return format;
  if (env.JOURNAL_STREAM || env.INVOCATION_ID || env.NODE_ENV === 'production' || !isTTY) return 'json';
  return 'text';
}

const SPLAT = Symbol.for('splat');
const MESSAGE = Symbol.for('message');

/** A value as a reader can scan it and a shell-like split can take back: bare when plain, JSON-quoted otherwise. */
function textValue(v: unknown): string {
  if (typeof v === 'string') return /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return JSON.stringify(v);
}

/** `time level message key=value …`, one line per entry whatever the message holds. */
const textLine = winston.format((info) => {
  const { timestamp, level, message, ...rest } = info as Record<string | symbol, unknown>;
  delete rest[SPLAT as unknown as string];
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${textValue(v)}`);
  const msg = String(message).replace(/[\r\n]+/g, ' ');
  (info as Record<symbol, unknown>)[MESSAGE] = [timestamp, String(level).padEnd(5), msg, ...fields].join(' ');
  return info;
});

/** Structured lines on stdout: JSON lines (journald and log shippers read them as they are) or text for a terminal. */
export function createLogger(level: string, opts: LoggerOptions | boolean = {}): Logger {
  const o = typeof opts === 'boolean' ? { silent: opts } : opts;
  const format = resolveFormat(o.format ?? 'auto', o.env, o.isTTY ?? (o.stream ? false : undefined));
  return winston.createLogger({
    level,
    silent: o.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), format === 'json' ? winston.format.json() : textLine()),
    transports: [o.stream ? new winston.transports.Stream({ stream: o.stream }) : new winston.transports.Console()],
  });
}
