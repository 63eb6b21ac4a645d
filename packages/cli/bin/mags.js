#!/usr/bin/env node
// The `mags` command: a tiny launcher; everything else loads lazily from dist.
import { main } from '../dist/src/main.js';

process.exitCode = await main(process.argv.slice(2));
