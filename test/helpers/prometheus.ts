/**
 * A strict parser of Prometheus's text exposition format (0.0.4): # HELP and # TYPE lines,
 * then samples `name{label="value",...} value`. Anything off the grammar throws, naming the
 * line: a scrape that Prometheus would refuse fails the test rather than parsing loosely.
 */
export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  if (text.length && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const lines = text.split('\n').slice(0, -1);
  let current: Family | null = null;
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)\b/.test(line)) throw new Error(`malformed ${where}`);
        return; // a comment
      }
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      let f = families.get(name);
      if (!f) {
        f = { name, help: '', type: 'untyped', samples: [] };
        families.set(name, f);
      } else if (f.samples.length) throw new Error(`${kind} after the samples of ${name}, ${where}`);
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`unknown type, ${where}`);
        f.type = rest as Family['type'];
      } else f.help = rest;
      current = f;
      return;
    }
    const s = parseSample(line, where);
    const base = familyOf(s.name, current);
    if (!base) throw new Error(`sample outside its family (${s.name}), ${where}`);
    base.samples.push(s);
  });
  for (const f of families.values()) checkFamily(f);
  return families;
}

function familyOf(name: string, current: Family | null): Family | null {
  if (!current) return null;
  if (name === current.name) return current;
  const suffixes = current.type === 'histogram' ? ['_bucket', '_sum', '_count'] : current.type === 'summary' ? ['_sum', '_count'] : [];
  return suffixes.some((x) => name === current.name + x) ? current : null;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
  if (!m) throw new Error(`malformed sample, ${where}`);
  const labels: Record<string, string> = {};
  let rest = m[3] ?? '';
  while (rest.length) {
    const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/.exec(rest);
    if (!l || !LABEL.test(l[1]!)) throw new Error(`malformed labels, ${where}`);
    if (l[1]! in labels) throw new Error(`label ${l[1]} twice, ${where}`);
    labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(l[0].length);
  }
  const raw = m[4]!;
  // As Go's ParseFloat reads it (Prometheus does): NaN and Inf in any case, numbers in decimal or exponent form.
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(raw);
  if (!special && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) throw new Error(`bad value, ${where}`);
  const value = special ? (special[2]!.toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity) : Number(raw);
  return { name: m[1]!, labels, value };
}

function checkFamily(f: Family): void {
  const seen = new Set<string>();
  for (const s of f.samples) {
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new Error(`${f.name}: the same series twice (${key})`);
    seen.add(key);
    if (f.type === 'counter' && !(s.value >= 0)) throw new Error(`${f.name}: a counter below 0`);
  }
  if (f.type === 'histogram') {
    const buckets = f.samples.filter((s) => s.name === `${f.name}_bucket`);
    for (const b of buckets) if (b.labels.le === undefined) throw new Error(`${f.name}: a bucket without le`);
    const groups = new Map<string, Sample[]>();
    for (const b of buckets) {
      const { le: _le, ...rest } = b.labels;
      const k = JSON.stringify(Object.entries(rest).sort());
      groups.set(k, [...(groups.get(k) ?? []), b]);
    }
    for (const [k, bs] of groups) {
      if (bs[bs.length - 1]!.labels.le !== '+Inf') throw new Error(`${f.name}${k}: the last bucket is not +Inf`);
      for (let i = 1; i < bs.length; i++) if (bs[i]!.value < bs[i - 1]!.value) throw new Error(`${f.name}${k}: buckets are not cumulative`);
    }
  }
}

/** The value of one series (labels matched exactly on the ones given); undefined if absent. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
