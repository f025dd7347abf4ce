// The fake IOS-XE devices of bench:poll, in a process of their own so that their TLS and HTTP
// work is not counted as the collector's (nor the bench's). Started by bench/poll.mjs with the
// path of test/helpers/fake-iosxe.ts transpiled to JS, the device count, the reports a device
// holds and the start of their measurements. Prints one JSON line when every device listens
// (ports, credentials, the CA file), then answers lines on stdin: `stats` with a JSON line of
// what was served, `stop` by stopping and exiting. It exits when stdin ends: a bench that dies
// leaves no devices behind.
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const [modulePath, count, reportsPerDevice, startTime] = process.argv.slice(2);
const { startFakeIosXe } = await import(pathToFileURL(modulePath).href);
const fake = await startFakeIosXe({ count: Number(count), reportsPerDevice: Number(reportsPerDevice), startTime: Number(startTime) });

const send = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
send({
  ready: true,
  caFile: fake.ca.caFile,
  devices: fake.devices.map((d) => ({ index: d.index, host: d.host, port: d.port, username: d.username, password: d.password, serial: d.udi.serial })),
});

function stats() {
  const byRequest = {};
  let connections = 0;
  let unauthorized = 0;
  let reportsServed = 0;
  for (const d of fake.devices) {
    connections += d.connections;
    for (const s of d.seen) {
      const k = `${s.method} ${s.path} ${s.status}`;
      byRequest[k] = (byRequest[k] ?? 0) + 1;
      if (!s.authorized) unauthorized++;
    }
    reportsServed += d.lastAllReports?.elements.length ?? 0;
  }
  return { requests: fake.requestCount(), connections, unauthorized, byRequest, reportsServed, rssMb: process.memoryUsage.rss() / 1048576 };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  if (line === 'stats') send(stats());
  if (line === 'stop') {
    await fake.stop();
    process.exit(0);
  }
});
lines.on('close', () => process.exit(0));
