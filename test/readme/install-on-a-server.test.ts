import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../systemd/files.js';
import { INSTALL_HEADING, installSectionProblems, section } from './install-section.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const installSection = section(readme, INSTALL_HEADING);

describe(`the README section "${INSTALL_HEADING}"`, () => {
  // The section must agree with systemd/ in every run.
  it('agrees with the shipped unit, sysusers and tmpfiles snippets (user, paths, modes, config, CLI, uninstall)', () => {
    expect(installSection, 'the README has the section').toBeDefined();
    expect(installSectionProblems(installSection!)).toEqual([]);
  });
});

describe('the install-section check', () => {
  const fence = '```';
  const broken = [
    `## ${INSTALL_HEADING}`,
    '',
    '<!-- norun: it needs root -->',
    `${fence}sh`,
    'sudo useradd --system outpost',
    'sudo install -m 0644 systemd/outpost.service /etc/systemd/system/outpost.service',
    'sudo systemctl enable --now outpost',
    "sudo tee /etc/outpost/config.json >/dev/null <<'EOF'",
    '{ "https": { "certFile": "/etc/outpost/tls/cert.pem", "keyFile": "/srv/key.pem" } }',
    'EOF',
    'sudo install -o outpost -g outpost -m 0640 key.pem /srv/key.pem',
    'outpost() { (cd /opt/outpost && sudo -u outpost env OUTPOST_DATA_DIR=/var/lib/outpost node dist/cli/main.js "$@"); }',
    'sudo rm -rf /etc/outpost',
    fence,
    '',
    `${fence}sh`,
    'outpost user add ann --role admin',
    fence,
  ].join('\n');

  it('names each way a section disagrees with systemd/', () => {
    const problems = installSectionProblems(broken);
    for (const p of [
      /block at line 16 .* not marked/,
      /systemd\/outpost\.sysusers is not installed as \/etc\/sysusers\.d\/outpost\.conf/,
      /systemd-tmpfiles --create is not run/,
      /made by hand/,
      /\/srv\/key\.pem is not in the folder the tmpfiles snippet makes for TLS files \(\/etc\/outpost\/tls\)/,
      /the key \/srv\/key\.pem is not installed as outpost's, mode 0600/,
      /the CLI does not run as outpost with OUTPOST_CONFIG=\/etc\/outpost\/config\.json/,
      /uninstalling leaves \/var\/lib\/outpost/,
      /uninstalling leaves the user outpost/,
    ]) expect(problems.some((x) => p.test(x)), `${p} in:\n${problems.join('\n')}`).toBe(true);
    expect(problems.some((x) => /first admin/.test(x))).toBe(false);
  });

  it('finds nothing missing from a section that is absent from the README', () => {
    expect(section('# Outpost\n\n## Other\ntext\n', INSTALL_HEADING)).toBeUndefined();
  });
});
