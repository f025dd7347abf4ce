import { resolve } from 'node:path';
import { readSecretFile } from '../shared/secret-file.js';
import { CliError } from './client.js';

/**
 * A secret a command is given: from a file only its owner may read (the option's value), else
 * from an environment variable; never from the command line, where every process listing shows
 * it. Undefined when neither is given.
 */
export function secretInput(file: string | undefined, what: string, envName: string): string | undefined {
  if (file) {
    try {
      return readSecretFile(resolve(file), what);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  return process.env[envName] || undefined;
}
