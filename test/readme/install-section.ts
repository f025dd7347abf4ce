import { readmeBlocks } from './blocks.js';
import { readUnit, systemdFile, tmpfiles } from '../systemd/files.js';

export const INSTALL_HEADING = 'Install on a server';

/** The text of a `## ` section, from its heading to the next `## ` heading; undefined when absent. */
export function section(markdown: string, heading: string): string | undefined {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l === `## ${heading}`);
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** The block's commands, one a line, with backslash continuations joined and comments cut. */
const commands = (code: string) => code.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l && !l.startsWith('#'));

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Where the section "Install on a server" disagrees with the collector's unit and snippets in
 * systemd/, one sentence each (none: they agree). `service` names the files (`outpost`).
 */
export function installSectionProblems(text: string, service = 'outpost'): string[] {
  const problems: string[] = [];
  const need = (ok: boolean, what: string) => void (ok || problems.push(what));
  const blocks = readmeBlocks(text);
  need(blocks.length > 0, 'the section has no sh block');
  // It needs root and systemd: not run by the README test (readmeBlocks refuses a norun without its reason).
  for (const b of blocks) need(b.norun !== undefined, `the block at line ${b.line} of the section is not marked <!-- norun: why -->`);
  const code = blocks.map((b) => b.code).join('\n');
  const cmds = commands(code);
  const has = (re: RegExp) => cmds.some((c) => re.test(c));

  const unit = readUnit(service);
  const user = unit.user;
  const sysusersConf = `/etc/sysusers.d/${service}.conf`;
  const tmpfilesConf = `/etc/tmpfiles.d/${service}.conf`;
  const unitFile = `/etc/systemd/system/${service}.service`;
  need(has(new RegExp(`install\\b.* systemd/${esc(service)}\\.sysusers ${esc(sysusersConf)}$`)), `systemd/${service}.sysusers is not installed as ${sysusersConf}`);
  need(has(new RegExp(`systemd-sysusers ${esc(sysusersConf)}$`)), `systemd-sysusers is not run on ${sysusersConf}`);
  need(has(new RegExp(`install\\b.* systemd/${esc(service)}\\.tmpfiles ${esc(tmpfilesConf)}$`)), `systemd/${service}.tmpfiles is not installed as ${tmpfilesConf}`);
  need(has(new RegExp(`systemd-tmpfiles --create ${esc(tmpfilesConf)}$`)), `systemd-tmpfiles --create is not run on ${tmpfilesConf}`);
  need(has(new RegExp(`install\\b.* systemd/${esc(service)}\\.service ${esc(unitFile)}$`)), `systemd/${service}.service is not installed as ${unitFile}`);
  need(has(new RegExp(`systemctl enable --now ${esc(service)}$`)), `the unit is not enabled and started (systemctl enable --now ${service})`);
  need(!has(/\buseradd\b|install -d\b|mkdir -p \/(etc|var)/), 'users or folders are made by hand: the sysusers and tmpfiles snippets make them');

  // The configuration: the unit's file, written in place (tee keeps the snippet's owner and mode).
  const config = unit.env.get('OUTPOST_CONFIG');
  need(config !== undefined, `systemd/${service}.service sets no OUTPOST_CONFIG`);
  const heredoc = new RegExp(`tee ${esc(config ?? '?')} >/dev/null <<'EOF'\\n([\\s\\S]*?)\\nEOF`).exec(code);
  need(heredoc !== null, `the configuration is not written to ${config} with tee and a quoted heredoc`);
  const entries = tmpfiles(systemdFile(`${service}.tmpfiles`));
  if (heredoc) {
    let settings: { https?: { certFile?: string; keyFile?: string } } = {};
    try {
      settings = JSON.parse(heredoc[1]!) as typeof settings;
    } catch (e) {
      problems.push(`the configuration written to ${config} is not JSON: ${(e as Error).message}`);
    }
    const tlsDir = entries.find((e) => e.type === 'd' && e.path.endsWith('/tls'))?.path;
    const { certFile, keyFile } = settings.https ?? {};
    need(!!certFile && !!keyFile, 'the configuration sets no https.certFile and https.keyFile');
    for (const f of [certFile, keyFile]) if (f) need(f.startsWith(`${tlsDir}/`), `${f} is not in the folder the tmpfiles snippet makes for TLS files (${tlsDir})`);
    if (keyFile) need(has(new RegExp(`install -o ${user} -g ${user} -m 0600 \\S+ ${esc(keyFile)}$`)), `the key ${keyFile} is not installed as ${user}'s, mode 0600`);
    if (certFile) need(has(new RegExp(`install -o root -g ${user} -m 0644 \\S+ ${esc(certFile)}$`)), `the certificate ${certFile} is not installed root:${user}, mode 0644`);
  }

  // The CLI: the service user, in the unit's folder, with the unit's settings and data folder.
  const dataDir = unit.env.get('OUTPOST_DATA_DIR');
  const cli = cmds.find((c) => c.includes('dist/cli/main.js'));
  need(cli !== undefined, 'no command runs the CLI (dist/cli/main.js)');
  if (cli) {
    need(cli.includes(`cd ${unit.workingDirectory} `), `the CLI does not run in ${unit.workingDirectory} (WorkingDirectory)`);
    need(cli.includes(`sudo -u ${user} env OUTPOST_CONFIG=${config} OUTPOST_DATA_DIR=${dataDir} `), `the CLI does not run as ${user} with OUTPOST_CONFIG=${config} OUTPOST_DATA_DIR=${dataDir}`);
  }
  need(has(/\buser add \S+ --role admin\b/), 'no first admin (user add NAME --role admin)');

  // Uninstall: what installing made goes.
  const removed = cmds.filter((c) => /\brm\b/.test(c)).flatMap((c) => c.split(/\s+/).filter((w) => w.startsWith('/')));
  const paths = new Set(entries.map((e) => e.path));
  const tops = [...paths].filter((p) => !paths.has(p.slice(0, p.lastIndexOf('/'))));
  const made = [unitFile, sysusersConf, tmpfilesConf, ...tops, unit.workingDirectory];
  for (const p of new Set(made)) need(removed.some((r) => p === r || p.startsWith(`${r}/`)), `uninstalling leaves ${p}`);
  need(has(new RegExp(`systemctl disable --now ${esc(service)}$`)), `uninstalling does not stop and disable ${service}`);
  need(has(new RegExp(`userdel ${user}$`)), `uninstalling leaves the user ${user}`);
  return problems;
}
