import { accessSync, constants, statSync } from 'node:fs';
import { AppError } from './errors.js';

/** A file system refusal as node reports it: the code, the call and the path it was about. */
interface ErrnoLike {
  code?: unknown;
  syscall?: unknown;
  path?: unknown;
  dest?: unknown;
}

const DIR_CALLS = new Set(['mkdir', 'opendir', 'scandir', 'rmdir']);

/**
 * The operator's side of a file system error: a missing file, a mode that forbids it, a folder
 * where a file belongs (or the reverse), a full or read-only disk. Each gets its own code and
 * names the path, so that the answer says what to fix; null for anything else (a fault of ours).
 * `what` names the thing for the reader ("config file", "RUM file"); the default is "file".
 */
export function fileProblem(err: unknown, what = 'file'): AppError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as ErrnoLike;
  if (typeof e.code !== 'string' || typeof e.path !== 'string') return null;
  const call = typeof e.syscall === 'string' ? e.syscall : '';
  // A rename that fails on a folder fails on where the file was going: that is the path to fix.
  const path = call === 'rename' && typeof e.dest === 'string' ? e.dest : e.path;
  const dirCall = DIR_CALLS.has(call) || call === 'rename';
  const details = { file: path };
  switch (e.code) {
    case 'ENOENT':
      return new AppError(404, 'file_not_found', `there is no ${dirCall ? 'folder' : what} ${path}`, details);
    case 'ENOTDIR':
      return dirCall
        ? new AppError(400, 'not_a_directory', `${path} lies under a file, not a folder: a folder belongs there`, details)
        : new AppError(404, 'file_not_found', `there is no ${what} ${path}: part of that path is a file, not a folder`, details);
    case 'EEXIST':
      return dirCall ? new AppError(400, 'not_a_directory', `${path} is a file; a folder belongs there`, details) : null;
    case 'EISDIR':
      return new AppError(400, 'not_a_file', `${path} is a directory; name a ${what}`, details);
    case 'EACCES':
    case 'EPERM':
      return new AppError(403, 'permission_denied', `permission denied on ${path}${call ? ` (${call})` : ''}: check its owner and mode, and the folders above it, for the user that runs outpost`, details);
    case 'EROFS':
      return new AppError(403, 'read_only_file_system', `${path} is on a read-only file system`, details);
    case 'ENOSPC':
    case 'EDQUOT':
      return new AppError(507, 'no_space', `no space left for ${path}: free some on its disk, then try again`, details);
  }
  return null;
}

/**
 * A file the operator named, checked before it is read: it exists, is a regular file (a FIFO
 * would block the reader until it gets a writer) and may be read. Throws the AppError that says which.
 */
export function assertReadableFile(path: string, what = 'file'): void {
  let isFile: boolean;
  let kind: string;
  try {
    const st = statSync(path);
    isFile = st.isFile();
    kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : 'not a regular file';
  } catch (e) {
    throw fileProblem(e, what) ?? e;
  }
  if (!isFile) throw new AppError(400, 'not_a_file', `${path} is ${kind}; name a ${what}`, { file: path });
  try {
    accessSync(path, constants.R_OK);
  } catch (e) {
    throw fileProblem(e, what) ?? e;
  }
}
