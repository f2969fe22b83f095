#!/usr/bin/env node
// The installed `tracehouse` command: runs the compiled CLI (`npm run build` produces dist/).
import { runCli } from '../dist/cli.js';

const code = await runCli(process.argv.slice(2));
process.exit(code);
