// Replays inputs (crash files from a fuzz run, corpus files) through a fuzz target without the
// fuzzer, in order in one process (so state left by earlier inputs applies), and prints the failed
// invariant with its stack:
//   node dist-fuzz/test/fuzz/repro.js <target> <file> [<file> ...]
import { readFileSync } from 'node:fs';

const [target, ...files] = process.argv.slice(2);
if (!target || files.length === 0) {
  process.stderr.write('usage: node dist-fuzz/test/fuzz/repro.js <target> <file>\n');
  process.exit(2);
}
const m = (await import(`./targets/${target}.js`)) as { fuzz: (d: Buffer) => void };
try {
  for (const file of files) {
    const data = readFileSync(file);
    process.stdout.write(`${target} <- ${data.toString('hex')}\n`);
    m.fuzz(data);
  }
  process.stdout.write('no invariant failed\n');
} catch (e) {
  process.stdout.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
}
