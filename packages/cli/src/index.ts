/** Programmatic entry of the `mags` CLI: `main(args)` runs one command and resolves to its exit code. */
export { main } from './main.js';
