/**
 * `empo benchmarks`: list the labeled benchmarks the evaluator can read and check them: each benchmark's
 * reference solutions, graded as if a model had written them, should score 100% (misses are listed with
 * their cause).
 */
import { EmpoError } from '@empo/core';
import { configFrom, configHelp, configOptions, parse } from '../args.ts';
import type { Command } from './types.ts';

const help = `Usage: empo benchmarks [NAME...] [--check] [--boxed] [--json] [options]

Lists the benchmarks (default: evaluator.benchmarks, else every built-in one in evaluator.datasets_dir)
with their number of questions and a sample prompt. With --check, grades each benchmark's reference
solutions as model outputs (the worked solution where the dataset has one, else \\boxed{reference}) and
lists every miss with its cause; exits 1 when any benchmark scores below 100%.

  NAME...            built-in benchmarks (math500, gsm8k, aime24, amc23, minerva_math, olympiadbench, mmlu_stem)
  --check            run the reference check
  --boxed            with --check: grade \\boxed{reference} only (not the worked solutions)
  --json             print the results as JSON

${configHelp}
`;

export const benchmarks: Command = {
  summary: 'list the evaluation benchmarks and check that their reference solutions grade 100%',
  async run(argv) {
    const { values, positionals } = parse('benchmarks', argv, {
      ...configOptions, check: { type: 'boolean' }, boxed: { type: 'boolean' }, json: { type: 'boolean' },
    }, true);
    if (values.help) return void process.stdout.write(help);
    const config = configFrom(values);
    const { BUILT_IN_NAMES, checkReferences, loadBenchmarks } = await import('@empo/evaluator');
    const specs = positionals.length ? positionals : config.evaluator.benchmarks.length ? config.evaluator.benchmarks : BUILT_IN_NAMES;
    const items = loadBenchmarks(specs, config.evaluator.datasets_dir);
    if (!values.check) {
      const names = [...new Set(items.map((i) => i.benchmark))];
      const rows = names.map((n) => {
        const list = items.filter((i) => i.benchmark === n);
        return { benchmark: n, questions: list.length, mode: list[0]!.mode, example_prompt: list[0]!.prompt, example_reference: list[0]!.reference };
      });
      if (values.json) return void process.stdout.write(JSON.stringify(rows) + '\n');
      for (const r of rows) {
        process.stdout.write(`${r.benchmark}: ${r.questions} questions (${r.mode}); reference of the first: ${r.example_reference}\n  ${r.example_prompt.slice(0, 300).replace(/\n/g, '\n  ')}\n`);
      }
      return;
    }
    const checks = checkReferences(items, !values.boxed);
    if (values.json) process.stdout.write(JSON.stringify(checks) + '\n');
    else {
      for (const c of checks) {
        process.stdout.write(`${c.benchmark}: ${c.correct}/${c.questions} (${(c.accuracy * 100).toFixed(1)}%; ${c.fromSolutions} worked solutions)\n`);
        for (const m of c.misses) process.stdout.write(`  ${m.question_id}: ${m.cause}\n`);
      }
    }
    if (checks.some((c) => c.accuracy < 1)) throw new EmpoError(`reference check: ${checks.filter((c) => c.accuracy < 1).map((c) => c.benchmark).join(', ')} below 100%`);
  },
};
