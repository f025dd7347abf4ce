import type Database from 'better-sqlite3';

/** Pending reports written straight into a store, as ingest leaves them: a long export or a large response without sending each. */
export function seedPendingReports(db: Database.Database, vaId: string, n: number, tags: string | ((k: number) => string), devices = 20): void {
  const tagOf = typeof tags === 'string' ? () => tags : tags;
  const now = Date.now();
  const dev = db.prepare(
    "INSERT INTO devices (id, va_id, udi_pid, udi_serial, hostname, status, source, registered_at, last_seen_at) VALUES (?, ?, 'C9300-48P', ?, ?, 'active', 'rum', ?, ?)",
  );
  const udi = db.prepare('INSERT INTO device_udis (udi, device_id) VALUES (?, ?)');
  const rep = db.prepare(
    "INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json) VALUES (?, 'device', ?, ?, ?, ?, ?, ?, 1, ?)",
  );
  const pend = db.prepare("INSERT INTO report_pending (destination, report_id, since) VALUES ('outpost', ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < devices; i++) {
      dev.run(`dev_seed${i}`, vaId, `SEED${i}`, `switch-${i}`, now, now);
      udi.run(`C9300-48P:SEED${i}`, `dev_seed${i}`);
    }
    for (let k = 0; k < n; k++) {
      const t = 1_790_000_000 + k;
      const tag = tagOf(k);
      const body = JSON.stringify({ reportId: `r${k}`, seq: k, generatedAt: t, measurements: [{ tag, count: 1, start: t - 3600, end: t }] });
      const pk = rep.run(`dev_seed${k % devices}`, `r${k}`, k, t * 1000, now - 1000, String(k).padStart(64, '0'), body, JSON.stringify([tag])).lastInsertRowid;
      pend.run(pk, now - 1000);
    }
  })();
}
