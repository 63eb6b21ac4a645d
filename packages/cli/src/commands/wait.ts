import { Command } from 'commander';
import type { Job } from '@mags/sdk';
import { jobExitCode, shownStatus } from '../job-view.js';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

/** Longest pause between two status reads of a job being waited for. */
const MAX_POLL_MS = 1000;

export function waitCommand(): Command {
  const cmd = new Command('wait')
    .description("Wait until jobs end; print each one's exit code and exit with the first non-zero one")
    .argument('<name-or-id...>', 'request ids, job names or workspace ids');
  withJson(withConnection(cmd));
  withExamples(cmd, ['id=$(mags run -d "make test"); mags wait $id && echo passed', 'mags wait build test   # one exit code per line', 'mags wait --json build']);
  return cmd.action(action(async (ids: string[], flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const ended: Job[] = [];
    for (const id of ids) {
      // A persistent job counts as done once its script ended (it sleeps; its sandbox stays).
      let delay = 100;
      let job = await mags.status(id);
      while (!['completed', 'error', 'sleeping'].includes(job.status)) {
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(MAX_POLL_MS, delay * 2);
        job = await mags.status(id);
      }
      ended.push(job);
      if (!flags.json) out(String(jobExitCode(job)));
    }
    if (flags.json) printJson(ended.map((j) => ({ request_id: j.request_id, status: j.status, shown_status: shownStatus(j), exit_code: j.exit_code ?? null, end_reason: j.end_reason ?? null, error_message: j.error_message ?? null })));
    return ended.map((j) => jobExitCode(j)).find((c) => c !== 0) ?? 0;
  }));
}
