// Runs the outpost CLI in this process and prints its peak RSS (kB) after it finishes.
const [cli, ...args] = process.argv.slice(2);
process.argv = [process.argv[0], cli, ...args];
await import(cli);
process.on('exit', () => process.stdout.write(`\nMAXRSS ${process.resourceUsage().maxRSS}\n`));
