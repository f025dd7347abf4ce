import { h, status } from './dom.js';

/**
 * How every page runs an operator's change: make it, read the page's data again, and only then
 * say how it went in `where`, so a notice never runs ahead of the table it speaks of. A secret
 * shown once (a new key or token) takes the focus, else the notice does. Returns whether the
 * change went through.
 */
export async function actThenSay(o: {
  where: HTMLElement;
  change: () => Promise<HTMLElement>;
  /** Says what did not happen, before the collector's reason. */
  failed: string;
  reload: () => Promise<unknown>;
  /** Says what could not be read again, before the reason. */
  unread: string;
}): Promise<boolean> {
  let said: HTMLElement;
  let done = false;
  try {
    said = await o.change();
    done = true;
  } catch (e) {
    said = status(`${o.failed}: ${(e as Error).message}`, 'error');
  }
  try {
    await o.reload();
  } catch (e) {
    // Said beside, never instead: what the change answered (a key shown this once) stays on the page.
    said = h('div', {}, said, status(`${o.unread}: ${(e as Error).message}`, 'error'));
  }
  o.where.replaceChildren(said);
  (o.where.querySelector<HTMLElement>('.secret') ?? o.where).focus();
  return done;
}
