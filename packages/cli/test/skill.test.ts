/**
 * The agent skill installed by `mags setup-claude` describes only what works: every `mags <command>`
 * it mentions exists in the CLI, every flag it gives a command is one of that command's options,
 * and it does not advertise features the server answers with FEATURE_NOT_AVAILABLE.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram } from '../src/program.js';
import { SKILL_MD } from '../src/commands/setup-claude.js';

/** Each `mags ...` invocation of the skill: the text from `mags` to the end of its code span or line. */
function invocations(text: string): string[] {
  const spans = [...text.matchAll(/`([^`\n]*)`/g)].map((m) => m[1]!);
  return spans.flatMap((span) => [...span.matchAll(/\bmags\s+[^|;]*/g)].map((m) => m[0].trim()));
}

function optionFlags(cmd: Command): Set<string> {
  const flags = new Set<string>(['--help', '-h', '--json']);
  for (const o of cmd.options) {
    if (o.long) flags.add(o.long);
    if (o.short) flags.add(o.short);
    if (o.negate && o.long) flags.add(o.long);
  }
  return flags;
}

test('every `mags <command>` in the skill exists, with options that command has', () => {
  const program = buildProgram();
  const found = invocations(SKILL_MD);
  assert.ok(found.length >= 8, `the skill mentions ${found.length} mags invocations`);
  for (const call of found) {
    const words = call.split(/\s+/).slice(1);
    const name = words[0]!;
    let cmd = program.commands.find((c) => c.name() === name || c.aliases().includes(name));
    assert.ok(cmd, `the skill mentions \`mags ${name}\`, which the CLI does not have (commands: ${program.commands.map((c) => c.name()).join(', ')})`);
    // `mags workspace restore ...`: the flags belong to the subcommand.
    let rest = words.slice(1);
    const sub = cmd.commands.find((c) => c.name() === rest[0] || c.aliases().includes(rest[0] ?? ''));
    if (sub) {
      cmd = sub;
      rest = rest.slice(1);
    }
    const flags = optionFlags(cmd);
    for (const w of rest) {
      // The quoted script and what follows it are the script's, not the command's.
      if (/^['"]/.test(w)) break;
      if (!/^--?[a-zA-Z]/.test(w)) continue;
      const flag = w.split('=')[0]!;
      assert.ok(flags.has(flag), `the skill gives \`mags ${name}\` the option ${flag}, which it does not have`);
    }
  }
});

test('the check above catches a command the CLI lacks', () => {
  const program = buildProgram();
  const names = new Set(program.commands.map((c) => c.name()));
  const bad = invocations('Open a shell: `mags teleport myproject`.').map((c) => c.split(/\s+/)[1]!);
  assert.deepEqual(bad, ['teleport']);
  assert.equal(names.has('teleport'), false);
});

test('the skill describes persistent sandboxes, exec, URLs, files and schedules', () => {
  for (const feature of [/mags new /, /mags exec /, /mags ssh /, /--url\b/, /-p\b/, /mags cp /, /mags cron add /, /--no-sleep\b/]) {
    assert.match(SKILL_MD, feature);
  }
});
