import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime } from '../format.js';
import type { TimeStatus } from '../../time/trusted-time.js';

type Status = TimeStatus & { zone: string };

function render(s: Status): string {
  const lines = [
    `system time   ${s.systemTime}  (${s.systemClock === 'believed' ? 'believed' : s.systemClock === 'ahead' ? `ahead by ${Math.round(s.aheadMs / 1000)} s: not believed` : `behind the floor by ${Math.round(s.behindMs / 1000)} s`})`,
    `trusted time  ${s.trustedTime}`,
    `floor         ${s.floor}`,
    `time zone     ${s.zone}`,
  ];
  if (s.alerts.length) lines.push('', ...s.alerts.map((a) => `${a.severity} ${a.kind} since ${shortTime(a.firstSeenAt)}: ${a.message}`));
  else lines.push('', 'no open clock alerts');
  return lines.join('\n');
}

export const timeCommands: Command[] = [
  {
    name: 'time status',
    usage: 'outpost time status',
    summary: 'Show the system time, the trusted time and its floor, the time zone and open clock alerts',
    async run(ctx) {
      const s = (await ctx.api((api) => api('GET', '/time'))) as Status;
      ctx.output(s, () => render(s));
    },
  },
  {
    name: 'time confirm',
    usage: 'outpost time confirm',
    summary: 'Confirm the system clock is right after a clock_forward alert: expiry checks believe it again (an event)',
    async run(ctx) {
      const s = (await ctx.api((api) => api('POST', '/time/confirm', {}))) as Status;
      ctx.output(s, () => `the system clock is confirmed: trusted time ${s.trustedTime}\n\n${render(s)}`);
    },
  },
  {
    name: 'time reset-floor',
    usage: 'outpost time reset-floor --to ISO-TIME',
    summary: 'Set the trusted-time floor to a given time, down as well as up, to recover from a wrong one (an event)',
    options: { to: { type: 'string' } },
    async run(ctx) {
      const to = str(ctx.values.to);
      if (!to) throw new CliError('--to is required: the time the floor should be, e.g. --to 2026-11-29T12:00:00Z', 2);
      const s = (await ctx.api((api) => api('POST', '/time/reset-floor', { to }))) as Status;
      ctx.output(s, () => `the floor is reset to ${to}\n\n${render(s)}`);
    },
  },
];
