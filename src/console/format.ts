/** Times as an operator reads them: the local date and time, minutes precise, and how long ago. */
export function when(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = new Date(t);
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `${stamp} (${ago(now - t)})`;
}

function ago(ms: number): string {
  const future = ms < 0;
  const m = Math.round(Math.abs(ms) / 60_000);
  const text = m < 1 ? 'now' : m < 60 ? `${m} min` : m < 48 * 60 ? `${Math.round(m / 60)} h` : `${Math.round(m / 1440)} days`;
  if (text === 'now') return 'just now';
  return future ? `in ${text}` : `${text} ago`;
}

export const count = (n: number) => n.toLocaleString('en');
