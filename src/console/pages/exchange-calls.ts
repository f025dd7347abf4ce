/**
 * The exchange page's two calls that api() does not make: an export followed line by line as
 * NDJSON progress, and a bundle file's bytes sent as application/octet-stream (a form's
 * multipart body is a cross-site "simple" request the collector refuses).
 */
export interface Progress {
  phase?: string;
  done: number;
  total: number | null;
  unit?: string;
}

/** Refused, or failed part-way: the collector's code and message. */
export class CallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const headers = (csrf: string | null, more: Record<string, string>) => ({ ...more, ...(csrf ? { 'x-csrf-token': csrf } : {}) });

async function refusal(res: Response): Promise<CallError> {
  const text = await res.text();
  try {
    const e = (JSON.parse(text) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } }).error;
    return new CallError(e?.code ?? 'http_error', e?.message ?? `the collector answered ${res.status}`, e?.details ?? {});
  } catch {
    return new CallError('http_error', `the collector answered ${res.status}`);
  }
}

/**
 * POSTs a JSON body to a route declared with `progress`, asking for NDJSON: each progress line
 * is handed to `onProgress`; the last line is the result or the error (after the first line,
 * 200 is already on the wire, so only that line says whether it failed).
 */
export async function followed<T>(path: string, body: unknown, csrf: string | null, onProgress: (p: Progress) => void): Promise<T> {
  const res = await fetch(`/api/v1${path}`, {
    method: 'POST',
    headers: headers(csrf, { accept: 'application/x-ndjson', 'content-type': 'application/json' }),
    credentials: 'same-origin',
    cache: 'no-store',
    body: JSON.stringify(body),
  });
  if (!res.ok || !res.body) throw await refusal(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let held = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) held += value;
    let nl: number;
    while ((nl = held.indexOf('\n')) >= 0) {
      const line = held.slice(0, nl).trim();
      held = held.slice(nl + 1);
      if (!line) continue;
      const o = JSON.parse(line) as { progress?: Progress; result?: T; error?: { code: string; message: string } };
      if (o.progress) onProgress(o.progress);
      else if (o.error) throw new CallError(o.error.code, o.error.message);
      else if ('result' in o) return o.result as T;
    }
    if (done) throw new CallError('incomplete_answer', 'the answer stopped before its result');
  }
}

/** Sends a file's bytes as they are, with the session's CSRF token; the parsed answer or a CallError. */
export async function uploadBytes<T>(path: string, file: Blob, csrf: string | null): Promise<T> {
  const res = await fetch(`/api/v1${path}`, {
    method: 'POST',
    headers: headers(csrf, { accept: 'application/json', 'content-type': 'application/octet-stream' }),
    credentials: 'same-origin',
    cache: 'no-store',
    body: file,
  });
  if (!res.ok) throw await refusal(res);
  return (await res.json()) as T;
}
