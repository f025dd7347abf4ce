import type { Dispatcher } from 'undici';
import { retryAfterSeconds, TransportError } from './transport-error.js';

export type ReplyHeaders = Record<string, string | string[] | undefined>;
type Body = Dispatcher.ResponseData['body'];

/** The media type alone, lower case: "application/json; charset=utf-8" → "application/json". */
export const mediaType = (h: ReplyHeaders): string => String(h['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

/** JSON replies are small; a bigger one is not from an Outpost upstream, and is not held in memory. */
export const MAX_JSON_BYTES = 1024 * 1024;

/** Lets go of a body not read to its end: undici reports that as an error, which nobody is waiting for. */
export function discard(body: Body): void {
  body.on('error', () => undefined);
  body.destroy();
}

/**
 * Reads at most `limit` bytes of a body, then lets go of the rest. `over` says whether more was
 * there. With `deadline`, the whole body must arrive within it: the body timeout bounds only the
 * silence between bytes, so a reply trickled a byte at a time would otherwise hold a sync for days.
 */
export async function readUpTo(body: Body, limit: number, deadline?: { ms: number; error: () => Error }): Promise<{ bytes: Buffer; over: boolean }> {
  const chunks: Buffer[] = [];
  let n = 0;
  const timer = deadline ? setTimeout(() => body.destroy(deadline.error()), deadline.ms) : undefined;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      n += chunk.length;
      if (n > limit) {
        discard(body);
        return { bytes: Buffer.concat(chunks).subarray(0, limit), over: true };
      }
    }
  } finally {
    clearTimeout(timer);
  }
  return { bytes: Buffer.concat(chunks), over: false };
}

// Control characters and bidi overrides from someone else's page never reach a terminal or a log as they are.
export const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]+/g, ' ').replace(/\s+/g, ' ').trim();

/** What a body looks like, in a few words an operator can act on, from its first bytes. */
export function describeBody(contentType: string, first: Buffer): string {
  const text = first.toString('utf8');
  if (first.length === 0) return 'an empty body';
  if (contentType === 'text/html' || /^\s*(<!doctype html|<html)/i.test(text)) {
    const title = /<title[^>]*>([^<]{1,120})/i.exec(text)?.[1];
    return `an HTML page${title ? ` ("${printable(title)}")` : ''}, not an Outpost reply`;
  }
  try {
    const j = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (j && typeof j.error?.code === 'string') return `error ${printable(j.error.code)}: ${printable(String(j.error.message ?? '')).slice(0, 300)}`;
  } catch {
    // not (whole) JSON: shown as text below
  }
  const shown = printable(text).slice(0, 160);
  return `${contentType ? `${contentType} ` : ''}"${shown}${text.length > 160 ? '…' : ''}", not an Outpost reply`;
}

/** A status the protocol never answers with, or a non-JSON error: TransportError `http`, its body described. */
export async function unexpectedStatus(status: number, headers: ReplyHeaders, body: Body, endpoint: string): Promise<TransportError> {
  let first: Buffer = Buffer.alloc(0);
  try {
    first = (await readUpTo(body, 2048)).bytes;
  } catch {
    // the description is a courtesy: a body cut while read for it still leaves the status to report
  }
  const retryable = status >= 500 || status === 429 || status === 408;
  const retryAfter = retryAfterSeconds(headers['retry-after']);
  const location = status >= 300 && status < 400 && typeof headers.location === 'string' ? ` (a redirect to ${printable(headers.location).slice(0, 200)}: check the URL, or whether a proxy or portal intercepts)` : '';
  return new TransportError(
    'http',
    `the upstream at ${endpoint} answered ${status} with ${describeBody(mediaType(headers), first)}${location}${retryAfter !== undefined ? ` (retry after ${retryAfter} s)` : ''}`,
    retryable,
    { status, endpoint, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) },
  );
}

/**
 * The code of a protocol error answer, if it has the shape of one. The upstream's words reach the
 * status, the audit trail and terminals: only a short code of lowercase letters passes.
 */
export function errorCode(json: unknown): string | undefined {
  const c = (json as { error?: { code?: unknown } } | null)?.error?.code;
  return typeof c === 'string' && /^[a-z0-9_]{1,64}$/.test(c) ? c : undefined;
}

/** Its message, made printable (no terminal controls, no bidi overrides) and at most 300 characters. */
export function errorMessage(json: unknown): string {
  const m = (json as { error?: { message?: unknown } } | null)?.error?.message;
  return typeof m === 'string' ? printable(m).slice(0, 300) : '';
}
