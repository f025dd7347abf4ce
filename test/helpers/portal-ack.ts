import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './temp.js';

/**
 * The portal's answer to an upload, as Cisco's sample tooling reads it: a gzip'd tar holding
 * ACK_UD_VA_<time>.tar.gz, which holds one ACK_dev_<id>_<time>.txt per dev_<id>_<time>.txt.
 */
export function portalAck(upload: string): { file: string; acks: Map<string, string> } {
  const dir = tempDir('ack');
  const got = join(dir, 'upload');
  mkdirSync(got);
  execFileSync('tar', ['-xzmf', upload, '-C', got]);
  const inner = readdirSync(got).find((f) => f.startsWith('UD_VA_'))!;
  const devs = join(dir, 'devs');
  mkdirSync(devs);
  execFileSync('tar', ['-xzmf', join(got, inner), '-C', devs]);
  const ackDir = join(dir, 'ack');
  mkdirSync(ackDir);
  const acks = new Map<string, string>();
  for (const f of readdirSync(devs)) {
    const devId = f.split('_')[1]!;
    const xml = `<smartLicense><smartLicenseRumAck><data>ack-for-${devId}-${f.length}</data></smartLicenseRumAck></smartLicense>`;
    writeFileSync(join(ackDir, `ACK_${f}`), xml);
    acks.set(devId, xml);
  }
  const out = join(dir, 'outer');
  mkdirSync(out);
  const innerAck = `ACK_${inner}`;
  execFileSync('tar', ['--format=ustar', '-czf', join(out, innerAck), '-C', ackDir, ...readdirSync(ackDir)]);
  writeFileSync(join(out, 'manifest.mf'), 'Manifest-Version: 1.0\n');
  const file = join(dir, 'ACK_portal.tar.gz');
  execFileSync('tar', ['--format=ustar', '-czf', file, '-C', out, 'manifest.mf', innerAck]);
  return { file, acks };
}
