import { h } from '../dom.js';

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Va {
  id: string;
  name: string;
}

/** A group of checkboxes under a legend, each with its own label: what was ticked is read back with `checked()`. */
export interface Ticks {
  fieldset: HTMLFieldSetElement;
  checked(): string[];
}

export function ticks(o: { id: string; legend: string; options: { value: string; label: string }[]; checked: readonly string[]; help?: string }): Ticks {
  const boxes = o.options.map((opt, i) => h('input', { type: 'checkbox', id: `${o.id}-${i}`, name: o.id, value: opt.value, checked: o.checked.includes(opt.value) }));
  const helpId = o.help ? `${o.id}-help` : null;
  const fieldset = h('fieldset', { class: 'ticks', id: o.id, 'aria-describedby': helpId },
    h('legend', {}, o.legend),
    o.options.map((opt, i) => h('span', { class: 'tick' }, boxes[i]!, h('label', { for: boxes[i]!.id }, opt.label))),
    o.help ? h('span', { class: 'help', id: helpId! }, o.help) : null,
  );
  return { fieldset, checked: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

export const severityTicks = (id: string, checked: readonly string[]) =>
  ticks({ id, legend: 'Severities', options: SEVERITIES.map((s) => ({ value: s, label: s })), checked });

/** VAs to hear of: none ticked is every VA (and, for whoever may read them, the alerts about none: the clock, the sync). */
export const vaTicks = (id: string, vas: Va[], checked: readonly string[] | null, help: string) =>
  ticks({ id, legend: 'Virtual accounts', options: vas.map((v) => ({ value: v.id, label: v.name })), checked: checked ?? [], help });

export function checkbox(id: string, label: string, checked: boolean): { field: HTMLElement; input: HTMLInputElement } {
  const input = h('input', { type: 'checkbox', id, name: id, checked });
  return { input, field: h('p', { class: 'field tick' }, input, h('label', { for: id }, label)) };
}

export const vaNames = (vas: Va[], ids: string[] | null, every: string) => {
  if (!ids) return every;
  const names = new Map(vas.map((v) => [v.id, v.name]));
  return ids.map((id) => names.get(id) ?? id).join(', ');
};
