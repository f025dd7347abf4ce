/**
 * One error type for everything a caller can get wrong. `code` is stable and machine-readable,
 * `status` is the HTTP status the error handler maps it to, `details` names what was wrong.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(400, code, message, details);
export const unauthorized = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(401, code, message, details);
export const forbidden = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(403, code, message, details);
export const notFound = (what: string, id: string) =>
  new AppError(404, 'not_found', `${what} ${id} does not exist`, { [what.replace(/ /g, '_')]: id });
export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(409, code, message, details);

export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

export function toErrorBody(err: AppError): ErrorBody {
  return { error: { code: err.code, message: err.message, details: err.details } };
}
