import { h, icon } from './dom.js';

/**
 * A secret shown once: selectable, with a button that copies it. The ids are the page's
 * (`<prefix>-secret`, `<prefix>-copy`), so two pages' panels never clash.
 */
export function secretPanel(o: { prefix: string; title: string; secret: string; label: string; help: string }): HTMLElement {
  const fieldId = `${o.prefix}-secret`;
  const helpId = `${o.prefix}-secret-help`;
  const field = h('input', { id: fieldId, readonly: true, value: o.secret, class: 'secret', 'aria-describedby': helpId, spellcheck: 'false' });
  const said = h('span', { class: 'copied', role: 'status' });
  const copy = h('button', { type: 'button', id: `${o.prefix}-copy` }, icon('copy'), h('span', {}, 'Copy'));
  copy.addEventListener('click', () => {
    field.select();
    navigator.clipboard.writeText(o.secret).then(
      () => (said.textContent = 'Copied.'),
      () => (said.textContent = 'Select the text and copy it with Ctrl+C.'),
    );
  });
  return h('div', { class: 'secret-panel', id: `${o.prefix}-secret-panel` },
    h('h3', {}, icon('key'), h('span', {}, o.title)),
    h('p', { id: helpId }, h('strong', {}, 'Copy the secret now: '), o.help),
    h('p', { class: 'secret-row' }, h('label', { for: fieldId, class: 'visually-hidden' }, o.label), field, copy, said),
  );
}
