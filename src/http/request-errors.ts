import { AppError } from '../shared/errors.js';

interface HttpishError {
  message: string;
  type?: string;
  status?: number;
  expose?: boolean;
  code?: string;
  limit?: number;
}

/**
 * What express and its body parser throw for a request the client got wrong, as the one error
 * shape with a code of its own; null for anything else (a fault of ours, answered 500).
 * Each of these once answered 500: a path with a broken percent-escape, a body that is not the
 * gzip its Content-Encoding claims.
 */
export function requestError(err: unknown): AppError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as HttpishError;
  if (err instanceof URIError) {
    return new AppError(400, 'bad_path_encoding', `the path holds a malformed percent-escape (${e.message})`);
  }
  switch (e.type) {
    case 'entity.parse.failed':
      return new AppError(400, 'malformed_json', `the body is not valid JSON: ${e.message}`);
    case 'entity.too.large':
      return new AppError(413, 'body_too_large', `the body exceeds ${e.limit} bytes`);
    case 'encoding.unsupported':
      return new AppError(415, 'unsupported_content_encoding', `${e.message}; send the body as is, or gzip, deflate or br`);
    case 'charset.unsupported':
      return new AppError(415, 'unsupported_charset', `${e.message}; send UTF-8`);
  }
  if (typeof e.code === 'string' && (e.code.startsWith('Z_') || e.code.startsWith('ERR__ERROR'))) {
    return new AppError(400, 'bad_content_encoding', `the body does not decode as its Content-Encoding says (${e.message})`);
  }
  if (e.expose === true && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new AppError(e.status, 'bad_request', e.message);
  }
  return null;
}
