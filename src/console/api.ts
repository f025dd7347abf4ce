/** Calls to the collector's API, from the page's own origin; every change carries the session's CSRF token. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
let onSignedOut: (why: string) => void = () => {};

export const setCsrfToken = (t: string | null) => void (csrfToken = t);
/** Called when the session no longer holds (ended, idle, expired): the page returns to sign-in. */
export const whenSignedOut = (f: (why: string) => void) => void (onSignedOut = f);

export async function api<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    const err = new ApiError(res.status, e?.code ?? 'http_error', e?.message ?? `the collector answered ${res.status}`);
    if (res.status === 401 && path !== '/auth/login') onSignedOut(err.message);
    throw err;
  }
  return parsed as T;
}
