import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { CliError, withApi } from './client.js';
import { EXIT } from '../lifecycle.js';
import type { Command, CommandContext } from './command.js';
import { tokenCommands } from './commands/token.js';
import { vaCommands } from './commands/va.js';
import { deviceCommands } from './commands/devices.js';
import { complianceCommands } from './commands/compliance.js';
import { licenseCommands } from './commands/licenses.js';
import { usageCommands } from './commands/usage.js';
import { eventCommands } from './commands/events.js';
import { notifyCommands } from './commands/notify.js';
import { serveCommands } from './commands/serve.js';
import { simulateCommands } from './commands/simulate.js';
import { exchangeCommands } from './commands/exchange.js';
import { upstreamCommands } from './commands/upstream.js';
import { timeCommands } from './commands/time.js';
import { reportCommands } from './commands/reports.js';
import { syncCommands } from './commands/sync.js';
import { ciscoCommands } from './commands/cisco.js';
import { ciscoCloudCommands } from './commands/cisco-cloud.js';
import { userCommands } from './commands/users.js';
import { ciscoReserveCommands } from './commands/cisco-reserve.js';
import { backupCommands } from './commands/backup.js';
import { doctorCommands } from './commands/doctor.js';
import { accessCommands } from './commands/access.js';
import { labelCommands } from './commands/labels.js';
import { safeJson, safeText } from './safe-text.js';
import { AppError } from '../shared/errors.js';
import { fileProblem } from '../shared/files.js';
import { createLogger } from '../shared/logger.js';

const commands: Command[] = [
  ...serveCommands, ...vaCommands, ...tokenCommands, ...deviceCommands, ...complianceCommands, ...licenseCommands,
  ...usageCommands, ...eventCommands, ...notifyCommands, ...exchangeCommands, ...upstreamCommands, ...simulateCommands,
  ...timeCommands,
  ...reportCommands,
  ...syncCommands,
  ...ciscoCommands,
  ...ciscoCloudCommands,
  ...userCommands,
  ...accessCommands,
  ...ciscoReserveCommands,
  ...backupCommands,
  ...doctorCommands,
  ...labelCommands,
];

const globalOptions = {
  json: { type: 'boolean' },
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function help(): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    'outpost: on-premises license collector',
    '',
    'usage: outpost COMMAND [options] [--json] [--config FILE] [--data-dir DIR]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'With a collector running, commands act through its local socket; otherwise on the database directly.',
  ].join('\n');
}

/** Finds the longest command name that the arguments start with ("devices list" before "devices"). */
function findCommand(argv: string[]): { cmd: Command; rest: string[] } | undefined {
  for (const words of [3, 2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const cmd = commands.find((c) => c.name === name);
    if (cmd) return { cmd, rest: argv.slice(words) };
  }
  return undefined;
}

export async function main(argv: string[]): Promise<number> {
  const found = findCommand(argv);
  if (!found) {
    if (argv.length && !argv[0]!.startsWith('-')) {
      process.stderr.write(`unknown command: ${argv.slice(0, 2).join(' ')}\n\n${help()}\n`);
      return 2;
    }
    process.stdout.write(help() + '\n');
    return argv.length ? 0 : 2;
  }
  const { cmd, rest } = found;
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...globalOptions, ...(cmd.options ?? {}) }, allowPositionals: true, strict: true });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nusage: ${cmd.usage}\n`);
    return 2;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    process.stdout.write(`${cmd.usage}\n\n${cmd.summary}\n`);
    return 0;
  }
  const json = Boolean(values.json);
  let config: Config | undefined;
  const getConfig = () => {
    if (config) return config;
    const warnings: string[] = [];
    try {
      return (config = loadConfig({
        file: typeof values.config === 'string' ? values.config : undefined,
        overrides: typeof values['data-dir'] === 'string' ? { dataDir: values['data-dir'] } : undefined,
        onWarning: (w) => warnings.push(w),
      }));
    } finally {
      warn(cmd, warnings, config);
    }
  };
  // Everything printed passes one gate: device-supplied text may hold terminal controls.
  const print = (text: string) => process.stdout.write(safeText(text) + '\n');
  const ctx: CommandContext = {
    positionals: parsed.positionals,
    values,
    json,
    config: getConfig,
    print,
    output: (data, render) => print(json ? safeJson(JSON.stringify(data, null, 2)) : render()),
    api: (fn) => withApi(getConfig(), (api) => fn(api)),
  };
  try {
    const code = await cmd.run(ctx);
    // Only a number is an exit code: a command's last expression may leak out as its value.
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof CliError) {
      if (json && e instanceof CliError && e.body) process.stderr.write(safeJson(JSON.stringify(e.body, null, 2)) + '\n');
      else process.stderr.write(`outpost ${cmd.name}: ${safeText(e instanceof CliError ? cliWording(cmd, e) : e.code ? `${e.message} (${e.code})` : e.message)}\n`);
      return e instanceof CliError ? e.exitCode : EXIT.config;
    }
    // A refusal raised in this process (a file named on the line, a data folder that is a
    // file) says what to fix, with its code, as the collector's answers do.
    const known = e instanceof AppError ? e : fileProblem(e);
    process.stderr.write(`outpost ${cmd.name}: ${safeText(known ? `${known.message} (${known.code})` : (e as Error).message)}\n`);
    return 1;
  }
}

/**
 * Unknown OUTPOST_* variables, once per run: on stderr for a command, in the log for the
 * collector (where a service's operator reads), at the level the configuration sets.
 */
function warn(cmd: Command, warnings: string[], config: Config | undefined): void {
  if (!warnings.length) return;
  if (cmd.name === 'serve' && config) {
    const log = createLogger(config.log.level, { format: config.log.format });
    for (const w of warnings) log.warn(w);
    return;
  }
  for (const w of warnings) process.stderr.write(`outpost: warning: ${safeText(w)}\n`);
}

interface Issue {
  path: string;
  message: string;
}

/**
 * The collector's refusal of a field, worded for the command line: the API's field path
 * (body: period) becomes the option or argument the operator typed (--period). A field the
 * command does not map keeps the API's wording.
 */
function cliWording(cmd: Command, e: CliError): string {
  const err = (e.body as { error?: { code?: string; details?: { issues?: Issue[] } } } | undefined)?.error;
  const issues = err?.details?.issues;
  if (!err?.code || !/^invalid_(body|query)$/.test(err.code) || !issues?.length) return e.message;
  const lines = issues.map((i) => {
    const field = i.path.split(/[.[]/)[0]!;
    // vaId is typed as --va: the option takes a name or an id.
    const options = [field, field.replace(/Id$/, '')].map((f) => f.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase());
    const option = options.find((o) => cmd.options && o in cmd.options);
    const name = cmd.fields?.[field] ?? (option ? `--${option}` : undefined);
    return name ? `${name}: ${i.message}` : undefined;
  });
  if (lines.some((l) => l === undefined)) return e.message;
  return `${[...new Set(lines)].join('; ')}\nusage: ${cmd.usage}`;
}
