import { secretInput } from '../secret-input.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command, CommandContext } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import type { PolledDevice } from '../../cisco/polled-devices.js';
import type { DevicePoll } from '../../cisco/poller.js';
import { assertReadableFile } from '../../shared/files.js';
import { commandProgress, quietOption, withProgress } from '../progress.js';

/**
 * A device's password, never from the command line (it would sit in the shell's history and in
 * every process listing): from a file only its owner may read, or from OUTPOST_DEVICE_PASSWORD.
 */
function password(ctx: CommandContext, required: boolean): string | undefined {
  const given = secretInput(str(ctx.values['password-file']), 'password file', 'OUTPOST_DEVICE_PASSWORD');
  if (given) return given;
  if (required) throw new CliError('give the password with --password-file FILE (mode 0600) or in OUTPOST_DEVICE_PASSWORD; never on the command line');
  return undefined;
}

function tls(ctx: CommandContext): { mode: 'ca' | 'pin' | 'insecure'; pin?: string } | undefined {
  const pin = str(ctx.values.pin);
  if (ctx.values.insecure && pin) throw new CliError('--pin and --insecure exclude each other');
  if (pin) return { mode: 'pin', pin };
  if (ctx.values.insecure) return { mode: 'insecure' };
  return undefined;
}

const port = (v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CliError('--port must be a port number (1 to 65535)');
  return n;
};

const render = (d: PolledDevice) =>
  [
    `${d.name} (${d.id}): ${d.username}@${d.host}:${d.port}, virtual account ${d.vaId}`,
    `  certificate: ${d.tls.mode === 'pin' ? `pinned ${d.tls.pin}` : d.tls.mode === 'insecure' ? 'NOT VERIFIED (insecure)' : 'verified against the CA'}`,
    `  last poll ${shortTime(d.lastPollAt)}, last success ${shortTime(d.lastSuccessAt)}, ${d.reports} reports, ACKs ${d.acks.pending} pending and ${d.acks.delivered} delivered${d.lastError ? `; last error: ${d.lastError}` : ''}`,
  ].join('\n');

const deviceOptions = {
  host: { type: 'string' }, port: { type: 'string' }, username: { type: 'string' }, 'password-file': { type: 'string' },
  va: { type: 'string' }, pin: { type: 'string' }, insecure: { type: 'boolean' }, name: { type: 'string' },
} as const;

export const ciscoCommands: Command[] = [
  {
    name: 'cisco devices list',
    usage: 'outpost cisco devices list [--va VA]',
    summary: 'IOS-XE devices polled over their Smart Licensing REST API',
    options: { va: { type: 'string' } },
    async run(ctx) {
      const va = str(ctx.values.va);
      const r = (await ctx.api((api) => api('GET', `/cisco/devices${va ? `?vaId=${encodeURIComponent(va)}` : ''}`))) as { items: PolledDevice[] };
      ctx.output(r.items, () =>
        table(r.items, [
          ['id', (d) => d.id], ['name', (d) => d.name], ['address', (d) => `${d.host}:${d.port}`], ['user', (d) => d.username],
          ['tls', (d) => d.tls.mode], ['last success', (d) => shortTime(d.lastSuccessAt)], ['reports', (d) => d.reports],
          ['acks pending', (d) => d.acks.pending], ['acks delivered', (d) => d.acks.delivered], ['last error', (d) => d.lastError],
        ]),
      );
    },
  },
  {
    name: 'cisco devices add',
    usage: 'outpost cisco devices add NAME --host HOST [--port 443] --username USER (--password-file FILE | OUTPOST_DEVICE_PASSWORD) [--va VA] [--pin SHA256 | --insecure]',
    summary: 'Add an IOS-XE device to poll; its password is sealed, never shown again',
    options: deviceOptions,
    fields: { name: 'NAME', vaId: '--va' },
    async run(ctx) {
      const name = ctx.positionals[0];
      const host = str(ctx.values.host);
      const username = str(ctx.values.username);
      if (!name || !host || !username) throw new CliError('name the device, and give --host and --username');
      const body = { name, host, port: port(str(ctx.values.port)), username, password: password(ctx, true), vaId: str(ctx.values.va) ?? 'Default', tls: tls(ctx) };
      const d = (await ctx.api((api) => api('POST', '/cisco/devices', body))) as PolledDevice;
      ctx.output(d, () => `added:\n${render(d)}`);
    },
  },
  {
    name: 'cisco devices edit',
    usage: 'outpost cisco devices edit DEVICE [--name NAME] [--host HOST] [--port N] [--username USER] [--password-file FILE] [--va VA] [--pin SHA256 | --insecure]',
    summary: 'Change a polled device',
    options: deviceOptions,
    fields: { vaId: '--va' },
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the device');
      const body = Object.fromEntries(
        Object.entries({
          name: str(ctx.values.name), host: str(ctx.values.host), port: port(str(ctx.values.port)), username: str(ctx.values.username),
          password: password(ctx, false), vaId: str(ctx.values.va), tls: tls(ctx),
        }).filter(([, v]) => v !== undefined),
      );
      const d = (await ctx.api((api) => api('PATCH', `/cisco/devices/${encodeURIComponent(id)}`, body))) as PolledDevice;
      ctx.output(d, () => render(d));
    },
  },
  {
    name: 'cisco devices show',
    usage: 'outpost cisco devices show DEVICE',
    summary: 'One polled device and its poll status',
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the device');
      const d = (await ctx.api((api) => api('GET', `/cisco/devices/${encodeURIComponent(id)}`))) as PolledDevice;
      ctx.output(d, () => render(d));
    },
  },
  {
    name: 'cisco devices remove',
    usage: 'outpost cisco devices remove DEVICE',
    summary: 'Stop polling a device (its reports stay)',
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the device');
      const r = (await ctx.api((api) => api('DELETE', `/cisco/devices/${encodeURIComponent(id)}`))) as { id: string };
      ctx.output(r, () => `${r.id} is no longer polled`);
    },
  },
  {
    name: 'cisco devices import',
    usage: 'outpost cisco devices import FILE.csv',
    summary: 'Add many devices from CSV: name,host,port,username,password,va[,tls,pin]; one bad line adds none',
    async run(ctx) {
      const file = ctx.positionals[0];
      if (!file) throw new CliError('name the CSV file');
      const path = resolve(file);
      assertReadableFile(path, 'CSV file');
      const r = (await ctx.api((api) => api('POST', '/cisco/devices/import', { csv: readFileSync(path, 'utf8') }))) as { added: PolledDevice[] };
      ctx.output(r, () => `${r.added.length} device(s) added: ${r.added.map((d) => d.name).join(', ')}`);
    },
  },
  {
    name: 'cisco poll',
    usage: 'outpost cisco poll [DEVICE] [--quiet]',
    summary: 'Poll the IOS-XE devices now (or one): close their reports, fetch and store them',
    options: { ...quietOption },
    async run(ctx) {
      const device = ctx.positionals[0];
      const r = (await withProgress(commandProgress(ctx, 'poll', 'devices'), (p) =>
        ctx.api((api) => api('POST', '/cisco/poll', device ? { device } : {}, { onProgress: (e) => p.update(e) })),
      )) as { items: DevicePoll[] };
      ctx.output(r.items, () =>
        table(r.items, [
          ['device', (p) => p.name], ['result', (p) => (p.ok ? 'ok' : 'failed')], ['accepted', (p) => p.accepted], ['replaced', (p) => p.replaced],
          ['duplicate', (p) => p.duplicate], ['error', (p) => (p.error ? `${p.error.message} (${p.error.code})` : null)],
        ]),
      );
      if (r.items.some((p) => !p.ok)) return 1;
    },
  },
  {
    name: 'cisco export',
    usage: 'outpost cisco export',
    summary: "Write the vendor portal's offline usage upload into sync-bundles/outbox, to upload to the portal by hand",
    async run(ctx) {
      const r = (await ctx.api((api) => api('POST', '/cisco/export', {}))) as { file: string; devices: number; reports: number; bytes: number };
      ctx.output(r, () => `${r.file} (${r.bytes} bytes): ${r.reports} report(s) of ${r.devices} device(s), each as the device gave it; upload it to the portal, then import its ACK file`);
    },
  },
  {
    name: 'cisco import-ack',
    usage: 'outpost cisco import-ack FILE',
    summary: "Read the portal's ACK archive, settle the reports it acknowledges, and deliver each ACK to its device",
    async run(ctx) {
      const file = ctx.positionals[0];
      if (!file) throw new CliError('name the ACK file the portal gave');
      const r = (await ctx.api((api) => api('POST', '/cisco/import-ack', { file: resolve(file) }))) as {
        devices: number; reportsAcknowledged: number; skipped: { member: string; reason: string }[]; delivery: { delivered: number; failed: number; manual: number };
      };
      ctx.output(r, () =>
        [
          `${r.reportsAcknowledged} report(s) of ${r.devices} device(s) acknowledged by the portal`,
          `ACKs delivered to ${r.delivery.delivered} device(s); ${r.delivery.failed} to try again (outpost cisco acks); ${r.delivery.manual} to import on the device by hand`,
          ...r.skipped.map((s) => `  skipped ${s.member}: ${s.reason}`),
        ].join('\n'),
      );
    },
  },
  {
    name: 'cisco acks',
    usage: 'outpost cisco acks [--save DIR]',
    summary: "The ACKs of the portal and of Cisco's cloud: delivered to their devices, or still waiting and why; --save writes those not delivered, to import on the device by hand",
    options: { save: { type: 'string' } },
    async run(ctx) {
      type Row = { from: string; uploadId: string; devId: string; udi: string | null; deliveredAt: string | null; attempts: number; lastError: string | null };
      const r = (await ctx.api((api) => api('GET', '/cisco/acks'))) as { items: Row[] };
      const dir = str(ctx.values.save);
      if (dir) {
        const waiting = r.items.filter((a) => !a.deliveredAt);
        const written: string[] = [];
        for (const a of waiting) {
          const one = (await ctx.api((api) => api('GET', `/cisco/acks/${a.from}/${encodeURIComponent(a.uploadId)}/${a.devId}`))) as { content: string };
          const file = join(resolve(dir), `ACK_${(a.udi ?? `dev_${a.devId}`).replace(/[^A-Za-z0-9._-]/g, '_')}_${a.uploadId.replace(/[^A-Za-z0-9._-]/g, '_')}.xml`);
          writeFileSync(file, one.content, { flag: 'wx' });
          written.push(file);
        }
        return void ctx.output({ written }, () => (written.length ? `written, to import on each device (license smart import):\n${written.join('\n')}` : 'every ACK has been delivered: nothing to save'));
      }
      ctx.output(r.items, () =>
        table(r.items, [
          ['from', (a) => a.from], ['dev', (a) => a.devId], ['udi', (a) => a.udi], ['delivered', (a) => shortTime(a.deliveredAt)], ['attempts', (a) => a.attempts], ['last error', (a) => a.lastError],
        ]),
      );
    },
  },
  {
    name: 'cisco devices test',
    usage: 'outpost cisco devices test DEVICE [--confirm FINGERPRINT]',
    summary: 'Try a device and show the certificate it presents; --confirm pins it once you have compared the fingerprint with its owner',
    options: { confirm: { type: 'string' } },
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the device');
      const confirm = str(ctx.values.confirm);
      const r = (await ctx.api((api) => api('POST', `/cisco/devices/${encodeURIComponent(id)}/test`, confirm ? { confirm } : {}))) as {
        presented: string | null; trusted: boolean; authenticated: boolean; pinned: boolean; error: { code: string; message: string } | null;
      };
      ctx.output(r, () =>
        [
          `certificate: ${r.presented ?? 'none seen'}${r.pinned ? ' (now pinned)' : r.trusted ? ' (trusted)' : ' (NOT trusted)'}`,
          `sign-in: ${r.authenticated ? 'ok' : r.error ? `${r.error.message} (${r.error.code})` : 'not tried'}`,
          ...(!r.trusted && !r.pinned && r.presented ? [`Compare it with the device's owner (show crypto pki certificates on the device), then: outpost cisco devices test ${id} --confirm ${r.presented}`] : []),
        ].join('\n'),
      );
      if (!r.authenticated && !r.pinned) return 1;
    },
  },
];
