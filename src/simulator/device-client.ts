import { request } from 'undici';
import { generateKeyPair, privateKeyObject } from '../shared/ed25519.js';
import { HEADER, REGISTRATION_DEVICE_ID, signRequest } from '../device-api/signing.js';
import type { DeviceReport } from '../usage/report-schema.js';
import type { KeyObject } from 'node:crypto';

export interface DeviceResponse {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** How many sent reports a simulated device keeps for sending again; a real device keeps them until ACKed. */
const KEEP = 10_000;
const RESEND_BATCH = 500;

/**
 * A device as a vendor would implement one: an ed25519 key, registration with a token,
 * signed requests. Used by the simulator, the tests and the benchmarks.
 */
export class SimulatedDevice {
  readonly publicKey: string;
  private key: KeyObject;
  deviceId: string | undefined;
  private seq = 0;

  constructor(
    readonly baseUrl: string,
    readonly collectorId: string,
    readonly udi: { pid: string; serial: string },
    /** The device's own clock, in ms; tests pass the collector's manual clock. */
    private now: () => number = Date.now,
  ) {
    const kp = generateKeyPair();
    this.key = privateKeyObject(kp.seed);
    this.publicKey = kp.publicKey.toString('base64');
  }

  /** Replaces the key, as a device that lost its state (or an impostor) would. */
  newKey(): void {
    const kp = generateKeyPair();
    this.key = privateKeyObject(kp.seed);
    (this as { publicKey: string }).publicKey = kp.publicKey.toString('base64');
  }

  get privateKey(): KeyObject {
    return this.key;
  }

  async send(method: string, path: string, body: string, deviceId = this.deviceId ?? REGISTRATION_DEVICE_ID, timestamp?: number): Promise<DeviceResponse> {
    const ts = String(timestamp ?? Math.floor(this.now() / 1000));
    const signature = signRequest(this.key, { method, path, collectorId: this.collectorId, deviceId, timestamp: ts, body });
    const res = await request(this.baseUrl + path, {
      method: method as 'GET' | 'POST',
      headers: {
        'content-type': 'application/json',
        [HEADER.device]: deviceId,
        [HEADER.timestamp]: ts,
        [HEADER.signature]: signature,
      },
      ...(method === 'GET' ? {} : { body }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? JSON.parse(text) : null, headers: res.headers };
  }

  async register(token: string, hostname = `sim-${this.udi.serial}`): Promise<DeviceResponse> {
    const body = JSON.stringify({ token, udi: this.udi, hostname, softwareVersion: '17.9.1', publicKey: this.publicKey });
    const r = await this.send('POST', '/device/v1/register', body, REGISTRATION_DEVICE_ID);
    if (r.status === 200 || r.status === 201) this.deviceId = r.body.deviceId;
    return r;
  }

  report(tag: string, count: number, at = Math.floor(this.now() / 1000), reportId?: string): DeviceReport {
    this.seq++;
    return {
      reportId: reportId ?? `${this.udi.serial}-${this.seq}-${at}`,
      seq: this.seq,
      generatedAt: at,
      measurements: [{ tag, count, start: at - 3600, end: at }],
    };
  }

  sendReport(r: DeviceReport): Promise<DeviceResponse> {
    return this.send('POST', '/device/v1/report', JSON.stringify(r));
  }

  sendBatch(reports: DeviceReport[]): Promise<DeviceResponse> {
    return this.send('POST', '/device/v1/reports', JSON.stringify({ reports }));
  }

  /** Reports sent and kept for sending again: the last KEEP, oldest first. */
  private kept: DeviceReport[] = [];

  /**
   * Sends reports as the README's device protocol asks: each is kept after it is sent, and when
   * an answer's `heldSeq` shows the collector holds less than was sent before (a collector
   * restored from a backup), the kept reports above it are sent again, in batches. Resolves with
   * the answer to the reports given and how many were sent again.
   */
  async sendKeeping(reports: DeviceReport[]): Promise<{ response: DeviceResponse; resent: number }> {
    for (const r of reports) this.kept.push(r);
    if (this.kept.length > KEEP) this.kept.splice(0, this.kept.length - KEEP);
    const response = await this.sendBatch(reports);
    let resent = 0;
    if (response.status !== 200) return { response, resent };
    const held = response.body.heldSeq as number | null;
    const now = new Set(reports.map((r) => r.reportId));
    const lost = this.kept.filter((r) => (held === null || r.seq > held) && !now.has(r.reportId));
    for (let i = 0; i < lost.length; i += RESEND_BATCH) {
      const again = await this.sendBatch(lost.slice(i, i + RESEND_BATCH));
      if (again.status !== 200) throw new Error(`resending reports failed with ${again.status}: ${JSON.stringify(again.body)}`);
      resent += Math.min(RESEND_BATCH, lost.length - i);
    }
    return { response, resent };
  }
}
