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
import { usageCommands } from './commands/usage.js';
import { eventCommands } from './commands/events.js';
import { serveCommands } from './commands/serve.js';
import { simulateCommands } from './commands/simulate.js';
import { exchangeCommands } from './commands/exchange.js';
import { upstreamCommands } from './commands/upstream.js';
import { timeCommands } from './commands/time.js';
import { reportCommands } from './commands/reports.js';
import { safeJson, safeText } from './safe-text.js';

const commands: Command[] = [
  ...serveCommands, ...vaCommands, ...tokenCommands, ...deviceCommands, ...complianceCommands,
  ...usageCommands, ...eventCommands, ...exchangeCommands, ...upstreamCommands, ...simulateCommands,
  ...timeCommands,
  ...reportCommands,
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
  const getConfig = () =>
    (config ??= loadConfig({
      file: typeof values.config === 'string' ? values.config : undefined,
      overrides: typeof values['data-dir'] === 'string' ? { dataDir: values['data-dir'] } : undefined,
    }));
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
      else process.stderr.write(`outpost ${cmd.name}: ${safeText(e.message)}\n`);
      return e instanceof CliError ? e.exitCode : EXIT.config;
    }
    process.stderr.write(`outpost ${cmd.name}: ${safeText((e as Error).message)}\n`);
    return 1;
  }
}
