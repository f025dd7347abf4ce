import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MIN_NODE_20, nodeSupported } from '../../src/shared/node-version.js';

const engines = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }).engines.node;

describe('the Node.js versions Outpost needs', () => {
  it('when package.json states its engines, then they start at the release that brought crypto.hash (20.12)', () => {
    expect(engines).toBe(`>=${MIN_NODE_20.join('.')} <21 || >=22`);
  });

  it('when the CLI starts on a version, then it accepts exactly what engines states', () => {
    for (const v of ['v20.12.0', 'v20.20.2', 'v22.0.0', 'v24.1.0']) expect(nodeSupported(v), v).toBe(true);
    for (const v of ['v18.20.0', 'v20.10.0', 'v20.11.1', 'v21.7.3']) expect(nodeSupported(v), v).toBe(false);
    expect(nodeSupported(process.version)).toBe(true); // the one running this test
  });
});
