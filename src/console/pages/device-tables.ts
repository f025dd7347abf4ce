import { h, icon, status } from '../dom.js';
import { count, when } from '../format.js';

/** The tables of a device's page: what the collector holds of it, each row marked with what a reader (or a test) matches it by. */
export type Destination = 'outpost' | 'portal' | 'cssm';
export interface Acknowledgement {
  destination: Destination;
  state: 'waiting' | 'accepted' | 'rejected';
  reason: string | null;
  at: string;
}
export interface StoredReport {
  reportId: string;
  source: 'device' | 'rum';
  receivedAt: string;
  generatedAt: string | null;
  measurements: number;
  tags: string[];
  bytes: number;
  acknowledgements: Acknowledgement[];
  settled: boolean;
}
export interface UsageNow {
  counted: boolean;
  items: { tag: string; count: number; periodEnd: string; reportId: string | null }[];
}
export interface DeviceEvent {
  id: number;
  at: string;
  type: string;
  actor: string;
  vaId: string | null;
  details: Record<string, unknown>;
}

// The collector's own names (src/usage/destinations.ts).
const DESTINATION_NAMES: Record<Destination, string> = { outpost: 'Outpost upstream', portal: 'vendor portal', cssm: 'Cisco cloud' };

/** A time as the operator reads it, with the exact instant kept for machines. */
export const time = (iso: string | null) => (iso ? h('time', { datetime: iso }, when(iso)) : 'never');

export function usageTable(u: UsageNow, license: (tag: string) => string, deviceStatus: string): HTMLElement {
  if (!u.items.length) {
    return status(deviceStatus === 'deregistered' ? 'None: a deregistered device holds no license.' : 'None: no report of this device has measured a license yet.');
  }
  return h('div', {},
    u.counted ? null : status(`Not counted in its virtual account while the device is ${deviceStatus}: these are its last measurements.`),
    h('table', { id: 'device-usage' },
      h('caption', { class: 'visually-hidden' }, 'Licenses this device uses now'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'License'), h('th', { scope: 'col', class: 'num' }, 'In use'),
        h('th', { scope: 'col' }, 'Measured until'), h('th', { scope: 'col' }, 'From report'),
      )),
      h('tbody', {}, u.items.map((i) =>
        h('tr', { 'data-tag': i.tag },
          h('th', { scope: 'row' }, license(i.tag)),
          h('td', { class: 'num count' }, count(i.count)),
          h('td', {}, time(i.periodEnd)),
          h('td', { class: 'report-id' }, i.reportId ?? 'pruned'),
        ),
      )),
    ),
  );
}

export function reportTable(reports: StoredReport[], license: (tag: string) => string): HTMLElement {
  if (!reports.length) return status('This device has sent no report yet.');
  return h('table', { id: 'device-reports' },
    h('caption', { class: 'visually-hidden' }, 'Reports of this device, newest first, with where each stands with its destinations'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Received'), h('th', { scope: 'col' }, 'Report'), h('th', { scope: 'col', class: 'num' }, 'Size'),
      h('th', { scope: 'col' }, 'Licenses'), h('th', { scope: 'col' }, 'Acknowledgement'),
    )),
    h('tbody', {}, reports.map((r) =>
      h('tr', { 'data-report': r.reportId },
        h('td', { class: 'received' }, time(r.receivedAt)),
        h('th', { scope: 'row', class: 'report-id' }, r.reportId, r.source === 'rum' ? h('span', { class: 'short-note' }, ' (RUM)') : null),
        h('td', { class: 'num bytes' }, `${count(r.bytes)} bytes`),
        h('td', { class: 'tags' }, h('ul', { class: 'plain-list' }, r.tags.map((t) => h('li', { 'data-tag': t }, license(t))))),
        h('td', { class: 'acks' }, acknowledgements(r)),
      ),
    )),
  );
}

function acknowledgements(r: StoredReport): HTMLElement | string {
  if (!r.acknowledgements.length) return 'kept here: no destination takes it';
  return h('ul', { class: 'plain-list' }, r.acknowledgements.map((a) => {
    const name = DESTINATION_NAMES[a.destination] ?? a.destination;
    const [tone, mark, words] =
      a.state === 'waiting' ? ['plain', 'clock', 'waiting since'] : a.state === 'accepted' ? ['ok', 'check', 'accepted'] : ['bad', 'block', 'rejected'];
    return h('li', { 'data-destination': a.destination, 'data-state': a.state },
      h('span', { class: `badge tone-${tone}` }, icon(mark), h('span', {}, a.state)),
      ` ${name}: ${words} `, time(a.at),
      a.reason ? h('span', { class: 'ack-reason' }, ` (${a.reason})`) : null,
    );
  }));
}

const REASONS: Record<string, string> = {
  new_key: 'a new key for a known device',
  claim_keyless: 'a key for a device known from RUM files',
  revive: 'a deregistered device registering again',
};

/** An event of the trail in words; the type stays visible for a reader who searches the trail. */
export function eventWords(e: DeviceEvent, vaName: (id: string) => string): string {
  const d = e.details;
  switch (e.type) {
    case 'device.registered':
      return 'Registered';
    case 'device.re_registered':
      return 'Registered again with its own key';
    case 'device.rekey_requested':
      return `Re-key requested: ${REASONS[String(d.reason)] ?? String(d.reason ?? 'a new key')}`;
    case 'device.rekeyed':
      return d.by === 'operator' ? 'Re-key approved' : 'Re-keyed with its current key';
    case 'device.rekey_refused':
      return 'Re-key refused';
    case 'device.moved':
      return `Moved from ${vaName(String(d.from))} to ${vaName(String(d.to))}`;
    case 'device.deregistered':
      return 'Deregistered';
    case 'device.stale':
      return 'Marked stale: silent too long';
    default:
      return e.type;
  }
}

// The key events of a device's life, each with a mark of its own (decorative: the words say it).
const KEY_EVENTS: Record<string, string> = {
  'device.registered': 'plus', 'device.re_registered': 'plus', 'device.rekey_requested': 'key', 'device.rekeyed': 'key',
  'device.rekey_refused': 'key', 'device.moved': 'device', 'device.deregistered': 'block', 'device.stale': 'clock',
};

export function eventTable(events: DeviceEvent[], vaName: (id: string) => string): HTMLElement {
  if (!events.length) return status('No event of this device in the audit trail you may see.');
  return h('table', { id: 'device-events' },
    h('caption', { class: 'visually-hidden' }, 'Audit events of this device, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'What'), h('th', { scope: 'col' }, 'By'), h('th', { scope: 'col' }, 'Event type'),
    )),
    h('tbody', {}, events.map((e) =>
      h('tr', { 'data-event': e.id, 'data-type': e.type, class: KEY_EVENTS[e.type] ? 'key-event' : null },
        h('td', {}, time(e.at)),
        h('th', { scope: 'row', class: 'what' }, KEY_EVENTS[e.type] ? icon(KEY_EVENTS[e.type]!) : null, h('span', {}, eventWords(e, vaName))),
        h('td', { class: 'actor' }, e.actor),
        h('td', { class: 'type' }, h('code', {}, e.type)),
      ),
    )),
  );
}
