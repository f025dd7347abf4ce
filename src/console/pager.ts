import { status } from './dom.js';
import { count } from './format.js';

export interface PageOf<T> {
  items: T[];
  nextCursor: string | null;
}

export interface KeysetPagerOptions<T> {
  /** The query for a page: the caller's filters, plus the cursor when there is one. */
  fetch: (cursor: string | null) => Promise<PageOf<T>>;
  /** Draws a page's rows into `results`. */
  draw: (items: T[]) => HTMLElement;
  /** What the rows are, for the summary and a failure: "devices", "events". */
  noun: string;
  /** Said after the numbers on every page: " of those matching, newest first". */
  after?: string;
  /** Said after that when another page follows: ", more on the next page". */
  more: string;
  pageSize: number;
  results: HTMLElement;
  summary: HTMLElement;
  prev: HTMLButtonElement;
  next: HTMLButtonElement;
}

/**
 * A list paged by the collector's keyset cursors. cursors[i] fetches page i (page 0 has none),
 * so Previous goes back without the collector keeping any state. `results` carries a count of
 * the answers drawn (data-answer), so a reader or a test tells a new answer from the last.
 */
export function keysetPager<T>(o: KeysetPagerOptions<T>): { load(): Promise<void>; restart(): Promise<void> } {
  let cursors: (string | null)[] = [null];
  let pageNo = 0;
  let answers = 0;
  const load = async () => {
    o.prev.disabled = o.next.disabled = true;
    try {
      const list = await o.fetch(cursors[pageNo] ?? null);
      cursors = cursors.slice(0, pageNo + 1);
      if (list.nextCursor) cursors.push(list.nextCursor);
      o.results.replaceChildren(o.draw(list.items));
      const first = pageNo * o.pageSize;
      o.summary.textContent = list.items.length
        ? `Page ${pageNo + 1}: ${o.noun} ${count(first + 1)} to ${count(first + list.items.length)}${o.after ?? ''}${list.nextCursor ? o.more : ''}.`
        : `No ${o.noun.replace(/s$/, '')} matches.`;
      o.prev.disabled = pageNo === 0;
      o.next.disabled = list.nextCursor === null;
    } catch (e) {
      o.results.replaceChildren(status(`The ${o.noun} could not be listed: ${(e as Error).message}`, 'error'));
      o.summary.textContent = '';
      o.prev.disabled = pageNo === 0;
    }
    o.results.dataset.answer = String(++answers);
  };
  const restart = () => {
    cursors = [null];
    pageNo = 0;
    return load();
  };
  o.prev.addEventListener('click', () => {
    if (pageNo > 0) pageNo--;
    void load();
  });
  o.next.addEventListener('click', () => {
    if (pageNo + 1 < cursors.length) pageNo++;
    void load();
  });
  return { load, restart };
}
