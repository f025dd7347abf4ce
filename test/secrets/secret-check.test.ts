import http from 'node:http';
import { createHash } from 'node:crypto';
import supertest from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../helpers/harness.js';
import { findLeaks, recordOutput, recordSecret, recorded, resetSecretCheck, tapSecrets } from '../helpers/secrets.js';

const PASSWORD = 'correct-horse-battery-staple-7';
const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);

// Each case plants a leak on purpose and looks at what the check finds; the file's own check then has nothing left.
afterEach(resetSecretCheck);

describe('the secret check', () => {
  it('records the secrets, log lines and answers of a harness, and finds none leaked on an ordinary run', async () => {
    const h = await startHarness();
    try {
      await h.token();
      await h.api.post('/api/v1/users').send({ name: 'ada', password: PASSWORD, roles: [{ role: 'admin' }] }).expect(201);
      const token = (await h.api.post('/api/v1/auth/token').send({ name: 'ada', password: PASSWORD }).expect(201)).body.secret as string;
      await h.api.get('/api/v1/users').set('authorization', `Bearer ${token}`).expect(200);
    } finally {
      await h.close();
    }
    const r = recorded();
    expect(r.secrets).toBeGreaterThanOrEqual(4); // the password, two token secrets, the identity key
    expect(r.logLines).toBeGreaterThan(0);
    expect(r.answers).toBeGreaterThanOrEqual(4);
    expect(findLeaks()).toEqual([]);
  });

  it('names a secret written to a log line by its kind and hash, never the secret', async () => {
    const h = await startHarness();
    try {
      await h.api.post('/api/v1/users').send({ name: 'bob', password: PASSWORD, roles: [{ role: 'auditor' }] }).expect(201);
      h.services.logger.warn('careless', { body: { password: PASSWORD } });
    } finally {
      await h.close();
    }
    const leaks = findLeaks();
    expect(leaks).toHaveLength(1);
    expect(leaks[0]).toContain(`a user password (sha256 ${hash(PASSWORD)}…) appears in log line`);
    expect(leaks[0]).toContain('names a secret written to a log line');
    expect(leaks.join('\n')).not.toContain(PASSWORD);
  });

  it('allows a secret in the answer that created it, and finds it in any other answer', async () => {
    let made = '';
    const server = http.createServer(tapSecrets((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'POST') made = `opt_${'x'.repeat(20)}${Date.now()}`;
      res.end(JSON.stringify(req.method === 'POST' ? { secret: made } : { echoed: made }));
    }));
    try {
      await supertest(server).post('/api/v1/tokens').send({}).expect(200);
      expect(findLeaks()).toEqual([]);
      await supertest(server).get('/api/v1/tokens').expect(200);
    } finally {
      server.close();
    }
    const leaks = findLeaks();
    expect(leaks).toEqual([`a registration token secret (sha256 ${hash(made)}…) appears in the answer 200 to GET /api/v1/tokens (during "allows a secret in the answer that created it, and finds it in any other answer")`]);
  });

  it("finds a secret in a server process's output, and one escaped in JSON", () => {
    recordSecret('proxy password', 'pa"ss\\word-123');
    recordOutput('collector', () => '{"level":"info","message":"proxy pa\\"ss\\\\word-123"}\n');
    expect(findLeaks()).toEqual([expect.stringContaining('a proxy password (sha256 ') as string]);
    expect(findLeaks()[0]).toContain('appears in the output of the collector');
  });
});
