import type { ParseArgsConfig } from 'node:util';
import type { Config } from '../config/schema.js';
import type { Api } from './client.js';

export interface CommandContext {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
  json: boolean;
  config: () => Config;
  print: (text: string) => void;
  /** Prints data as JSON with --json, else as the text the command renders. */
  output: (data: unknown, render: () => string) => void;
  api: <T>(fn: (api: Api) => Promise<T>) => Promise<T>;
}

export interface Command {
  /** e.g. "token create" */
  name: string;
  usage: string;
  summary: string;
  options?: NonNullable<ParseArgsConfig['options']>;
  /**
   * How the API's body and query fields are named on this command's line, where not as the
   * option of the same name in kebab case (period is --period): e.g. { name: 'NAME', vaId: '--va' }.
   * Lets a refusal of a field speak of what the operator typed.
   */
  fields?: Record<string, string>;
  /** Resolves with the exit code where it is not 0 (serve), or with nothing. */
  run: (ctx: CommandContext) => Promise<void | number>;
}

export const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
