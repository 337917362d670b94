import { readFileSync } from 'node:fs';
import { EmpoError, Rng, writeFileAtomic } from '@empo/core';
import type { AnswerMode, Judge } from '@empo/grader';
import { parse, positiveInt } from '../args.ts';
import type { Command } from './types.ts';

const MODES: readonly AnswerMode[] = ['math', 'choice', 'text'];

const ioOptions = {
  input: { type: 'string' },
  output: { type: 'string' },
  mode: { type: 'string' },
  'judge-url': { type: 'string' },
  'judge-model': { type: 'string' },
  'judge-key-env': { type: 'string' },
  'judge-bidirectional': { type: 'boolean' },
  'judge-timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const ioHelp = `  --input FILE            JSONL input, one object per line ('-' reads stdin); required
  --output FILE           write the result there (atomically) instead of stdout
  --mode MODE             default answer mode for lines without "mode": math (default), choice, text
  --judge-url URL         free-form (text mode) verifier: OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1
  --judge-model NAME      the verifier's model name (needed with --judge-url)
  --judge-key-env VAR     environment variable holding the verifier's API key (the key is never printed)
  --judge-bidirectional   ask the verifier both ways (a~b and b~a)
  --judge-timeout-ms N    verifier request timeout (default 30000)
  -h, --help              this help`;

type Line = Record<string, unknown>;

/** Read a JSONL file into objects; errors name the file and line. */
function readJsonl(file: string): { line: number; value: Line }[] {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (error) {
    throw new EmpoError(`cannot read --input ${file}: ${(error as Error).message}`);
  }
  const out: { line: number; value: Line }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw.length === 0) continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new EmpoError(`${file}:${i + 1}: invalid JSON (${(error as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new EmpoError(`${file}:${i + 1}: expected a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
    }
    out.push({ line: i + 1, value: value as Line });
  }
  return out;
}

function lineMode(where: string, value: Line, fallback: AnswerMode): AnswerMode {
  const mode = value.mode ?? fallback;
  if (typeof mode !== 'string' || !MODES.includes(mode as AnswerMode)) {
    throw new EmpoError(`${where}: "mode" must be one of ${MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  }
  return mode as AnswerMode;
}

function optionalString(where: string, value: Line, key: string): string | undefined {
  const v = value[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new EmpoError(`${where}: "${key}" must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function choicesOf(where: string, value: Line): string[] | undefined {
  const v = value.choices;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((c) => typeof c === 'string')) throw new EmpoError(`${where}: "choices" must be a list of strings`);
  return v as string[];
}

/** A reference may be a string or a number (`27.0`); anything else is an error. */
function referenceOf(where: string, value: Line, required: boolean): string | undefined {
  const v = value.reference;
  if (v === undefined || v === null) {
    if (required) throw new EmpoError(`${where}: "reference" is required (a string or a number)`);
    return undefined;
  }
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') throw new EmpoError(`${where}: "reference" must be a string or a number, got ${JSON.stringify(v)}`);
  return v;
}

async function makeJudge(values: { 'judge-url'?: string; 'judge-model'?: string; 'judge-key-env'?: string; 'judge-bidirectional'?: boolean; 'judge-timeout-ms'?: string }): Promise<Judge | undefined> {
  const url = values['judge-url'];
  if (url === undefined) {
    if (values['judge-model'] !== undefined || values['judge-key-env'] !== undefined) throw new EmpoError('--judge-model and --judge-key-env need --judge-url');
    return undefined;
  }
  if (values['judge-model'] === undefined) throw new EmpoError('--judge-url needs --judge-model');
  const keyEnv = values['judge-key-env'];
  if (keyEnv !== undefined && !process.env[keyEnv]) throw new EmpoError(`--judge-key-env: environment variable ${keyEnv} is not set`);
  const { OpenAICompatibleJudge, JudgeError } = await import('@empo/grader');
  try {
    return new OpenAICompatibleJudge({
      baseUrl: url,
      model: values['judge-model'],
      apiKeyEnv: keyEnv,
      bidirectional: values['judge-bidirectional'] ?? false,
      timeoutMs: timeoutOf(values['judge-timeout-ms']),
    });
  } catch (error) {
    if (error instanceof JudgeError) throw new EmpoError(error.message);
    throw error;
  }
}

function timeoutOf(text: string | undefined): number {
  const ms = positiveInt('--judge-timeout-ms', text, 30_000);
  if (ms === 0) throw new EmpoError('--judge-timeout-ms must be positive');
  return ms;
}

function defaultMode(mode: string | undefined): AnswerMode {
  if (mode === undefined) return 'math';
  if (!MODES.includes(mode as AnswerMode)) throw new EmpoError(`--mode must be one of ${MODES.join(', ')}, got '${mode}'`);
  return mode as AnswerMode;
}

function writeOut(output: string | undefined, lines: string[]): void {
  const text = lines.length > 0 ? lines.join('\n') + '\n' : '';
  if (output === undefined) process.stdout.write(text);
  else writeFileAtomic(output, text);
}

/** Judge failures are user-facing (server down, bad key name): report them without a stack. */
async function withJudgeErrors<T>(where: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if ((error as Error)?.name === 'JudgeError') throw new EmpoError(`${where}: ${(error as Error).message}`);
    throw error;
  }
}

export const grade: Command = {
  summary: 'grade responses against reference answers (JSONL) -> each line with "extracted" and "correct"',
  async run(argv) {
    const { values } = parse('grade', argv, ioOptions);
    if (values.help) {
      process.stdout.write(`Usage: empo grade --input F.jsonl [--output OUT.jsonl] [--mode math|choice|text] [options]

Reads lines {"response": "...", "reference": "..." | number, "mode"?: "math"|"choice"|"text",
"choices"?: [...], "question"?: "..."} and writes each line back with "extracted" (the final
answer found in the response, or null) and "correct" (equivalent to the reference).
Math: last \\boxed{}, answer markers, then MATH normalization, numeric and symbolic (CAS)
equivalence. Choice: the option letter (or an option's text, given "choices"). Text:
normalized text equality, then the verifier when --judge-url is given.

${ioHelp}
`);
      return;
    }
    if (values.input === undefined) throw new EmpoError("--input is required; see 'empo grade --help'");
    const fallback = defaultMode(values.mode);
    const judge = await makeJudge(values);
    const { gradeResponse, gradeWithJudge, referenceAnswer } = await import('@empo/grader');
    const out: string[] = [];
    let correct = 0;
    for (const { line, value } of readJsonl(values.input)) {
      const where = `${values.input}:${line}`;
      if (typeof value.response !== 'string') throw new EmpoError(`${where}: "response" must be a string, got ${JSON.stringify(value.response ?? null)}`);
      const reference = referenceOf(where, value, true)!;
      const mode = lineMode(where, value, fallback);
      const choices = choicesOf(where, value);
      const question = optionalString(where, value, 'question');
      const result = gradeResponse(value.response, reference, mode, { choices });
      if (!result.correct && judge !== undefined && mode === 'text') {
        result.correct = await withJudgeErrors(where, () => gradeWithJudge(result.extracted, referenceAnswer(reference, 'text'), judge, { question }));
      }
      if (result.correct) correct++;
      out.push(JSON.stringify({ ...value, extracted: result.extracted, correct: result.correct }));
    }
    writeOut(values.output, out);
    const rate = out.length > 0 ? ` (${((100 * correct) / out.length).toFixed(1)}%)` : '';
    process.stderr.write(`[empo] graded ${out.length} lines: ${correct} correct${rate}${values.output ? ` -> ${values.output}` : ''}\n`);
  },
};

export const entropy: Command = {
  summary: 'cluster groups of responses (JSONL) -> answers, cluster ids, semantic entropy and rewards',
  async run(argv) {
    const { values } = parse('entropy', argv, { ...ioOptions, reward: { type: 'string' }, seed: { type: 'string' }, 'copy-guard': { type: 'boolean' } });
    if (values.help) {
      process.stdout.write(`Usage: empo entropy --input F.jsonl [--output OUT.jsonl] [--reward NAME] [options]

Reads lines {"responses": ["...", ...], "mode"?: "math"|"choice"|"text", "question"?: "...",
"reference"?: "...", "choices"?: [...]} and writes each line back with "answers" (extracted,
null when unextractable), "cluster_ids" (greedy semantic clustering), "entropy" (natural log)
and "rewards" (per response).

  --reward NAME           empo (default, cluster share), majority, gold (needs "reference"), random, format
  --seed N                seed of the random reward (default 0)
  --copy-guard            treat answers copied from "question" as unextractable
${ioHelp}
`);
      return;
    }
    if (values.input === undefined) throw new EmpoError("--input is required; see 'empo entropy --help'");
    const fallback = defaultMode(values.mode);
    const judge = await makeJudge(values);
    const grader = await import('@empo/grader');
    const rewardName = values.reward ?? 'empo';
    if (!grader.isRewardName(rewardName)) throw new EmpoError(`--reward: unknown reward '${rewardName}'; valid rewards: ${grader.REWARD_NAMES.join(', ')}`);
    const reward = grader.getReward(rewardName);
    const seed = positiveInt('--seed', values.seed, 0);
    const out: string[] = [];
    for (const { line, value } of readJsonl(values.input)) {
      const where = `${values.input}:${line}`;
      const responses = value.responses;
      if (!Array.isArray(responses) || !responses.every((r) => typeof r === 'string')) {
        throw new EmpoError(`${where}: "responses" must be a list of strings`);
      }
      const mode = lineMode(where, value, fallback);
      const choices = choicesOf(where, value);
      const question = optionalString(where, value, 'question');
      const reference = referenceOf(where, value, rewardName === 'gold');
      const extracted = (responses as string[]).map((r) => grader.extractAnswer(r, mode, { choices }));
      const answers = grader.guardAnswers(extracted, {
        question,
        responses: responses as string[],
        copyGuard: values['copy-guard'] === true && question !== undefined,
      });
      let clustering;
      if (mode === 'text' && judge !== undefined) {
        clustering = await withJudgeErrors(where, () => grader.clusterAnswersAsync(answers, grader.judgeEquivalence(judge, { mode, question })));
      } else {
        clustering = mode === 'math' ? grader.clusterAnswers(answers) : grader.clusterAnswers(answers, (a, b) => grader.answerMatches(a, b, mode));
      }
      const { clusterIds, clusterSizes } = clustering;
      const rewards = reward({ answers, clusterIds, clusterSizes, rng: Rng.derive(seed, 'entropy', line), reference, mode });
      out.push(JSON.stringify({ ...value, answers, cluster_ids: clusterIds, entropy: grader.semanticEntropy(clusterIds), rewards }));
    }
    writeOut(values.output, out);
    process.stderr.write(`[empo] clustered ${out.length} groups${values.output ? ` -> ${values.output}` : ''}\n`);
  },
};
