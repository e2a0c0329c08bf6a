// Replays one input (a crash file from a fuzz run, or a corpus file) through a fuzz target
// without the fuzzer, and prints the failed invariant with its stack:
//   node dist-fuzz/test/fuzz/repro.js <target> <file>
import { readFileSync } from 'node:fs';

const [target, file] = process.argv.slice(2);
if (!target || !file) {
  process.stderr.write('usage: node dist-fuzz/test/fuzz/repro.js <target> <file>\n');
  process.exit(2);
}
const m = (await import(`./targets/${target}.js`)) as { fuzz: (d: Buffer) => void };
const data = readFileSync(file);
process.stdout.write(`${target} <- ${data.toString('hex')}\n`);
try {
  m.fuzz(data);
  process.stdout.write('no invariant failed\n');
} catch (e) {
  process.stdout.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
}
