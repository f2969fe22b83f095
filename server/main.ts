/** Process entry for `node dist/main.js`: the same as `tracehouse serve`. */
import { runCli } from './cli.js';

process.exitCode = await runCli(['serve']);
