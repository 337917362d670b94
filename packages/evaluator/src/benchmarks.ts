/**
 * Labeled benchmarks: the public sets in ../shared/datasets (one JSON object per line) and any JSONL or
 * Parquet file with configurable question/answer fields, turned into evaluation items with a prompt.
 *
 * | benchmark      | question field        | reference answer                                           | mode   |
 * |----------------|-----------------------|------------------------------------------------------------|--------|
 * | math500        | question              | last \boxed{} of `answer` (a full solution)                | math   |
 * | gsm8k          | question              | text after `####` in `answer` (commas removed)             | math   |
 * | aime24         | problem               | answer                                                     | math   |
 * | amc23          | problem               | answer (a number; 27.0 is read as 27)                      | math   |
 * | minerva_math   | problem               | last \boxed{} of `solution`                                | math   |
 * | olympiadbench  | question              | final_answer (a list: joined with ", "; $ stripped; unit   | math   |
 * |                |                       | not part of the answer)                                    |        |
 * | mmlu_stem      | question + choices    | answer: 0-based index of the right choice -> letter A-D    | choice |
 *
 * Prompt templates: math benchmarks use MATH_TEMPLATE ("{question}\nPlease reason step by step, and put
 * your final answer within \boxed{}."); multiple choice lists the options as "A. ...", one a line, and
 * asks for the letter in \boxed{} (CHOICE_TEMPLATE).
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { EmpoError, parquetToTable, type BenchmarkConfig } from '@empo/core';
import { choiceLetter, extractBoxed, gradeResponse, referenceAnswer, type AnswerMode } from '@empo/grader';

export const MATH_TEMPLATE = '{question}\nPlease reason step by step, and put your final answer within \\boxed{}.';
export const CHOICE_TEMPLATE = '{question}\n{choices}\nPlease reason step by step, and put the letter of the correct option (for example \\boxed{A}) as your final answer within \\boxed{}.';

/** One labeled question, ready to prompt and grade. */
export interface BenchmarkItem {
  benchmark: string;
  question_id: string;
  /** The question text as the dataset has it (without the options). */
  question: string;
  /** Bare reference answer (a letter in choice mode). */
  reference: string;
  mode: AnswerMode;
  /** Choice mode: the options' texts, in order (A, B, ...). */
  choices?: string[];
  /** The prompt text (template applied). */
  prompt: string;
  /** The dataset's own worked solution, when it has one (used to check the grader on the references). */
  solution: string | null;
}

type Row = Record<string, unknown>;

interface BuiltIn {
  question: (r: Row) => unknown;
  reference: (r: Row) => string | null;
  solution: (r: Row) => string | null;
  choices?: (r: Row) => string[];
  id?: (r: Row, i: number) => string;
}

const str = (x: unknown): string | null => (x === null || x === undefined ? null : typeof x === 'string' ? x : typeof x === 'number' || typeof x === 'boolean' ? String(x) : JSON.stringify(x));
const lastBoxed = (x: unknown): string | null => {
  const s = str(x);
  if (s === null) return null;
  const b = extractBoxed(s);
  return b === null ? null : b.trim();
};
const list = (x: unknown): unknown[] => {
  if (Array.isArray(x)) return x;
  if (typeof x === 'string') {
    try {
      const parsed = JSON.parse(x) as unknown;
      if (Array.isArray(parsed)) return parsed;
    } catch {
      // a plain string
    }
    return [x];
  }
  return x === null || x === undefined ? [] : [x];
};
const stripDollars = (s: string) => s.trim().replace(/^\$+|\$+$/g, '').trim();

/** The built-in benchmarks of ../shared/datasets, by folder name. */
export const BUILT_IN: Record<string, BuiltIn> = {
  math500: { question: (r) => r.question, reference: (r) => lastBoxed(r.answer) ?? referenceAnswer(str(r.answer) ?? ''), solution: (r) => str(r.answer) },
  gsm8k: {
    question: (r) => r.question,
    reference: (r) => {
      const a = str(r.answer) ?? '';
      const at = a.lastIndexOf('####');
      return at < 0 ? null : a.slice(at + 4).trim().replace(/,/g, '');
    },
    // Calculator annotations (<<a*b=c>>) are not part of the text a model would write.
    solution: (r) => (str(r.answer) ?? '').replace(/<<[^>]*>>/g, ''),
  },
  aime24: { question: (r) => r.problem ?? r.question, reference: (r) => str(r.answer), solution: (r) => str(r.solution), id: (r, i) => str(r.id) ?? String(i) },
  amc23: {
    question: (r) => r.problem ?? r.question,
    reference: (r) => (typeof r.answer === 'number' ? String(r.answer) : str(r.answer)),
    solution: () => null, id: (r, i) => str(r.id) ?? String(i),
  },
  minerva_math: { question: (r) => r.problem, reference: (r) => lastBoxed(r.solution), solution: (r) => str(r.solution), id: (r, i) => str(r.idx) ?? String(i) },
  olympiadbench: {
    question: (r) => r.question,
    reference: (r) => {
      const answers = list(r.final_answer).map((a) => stripDollars(str(a) ?? '')).filter((a) => a.length > 0);
      return answers.length ? answers.join(', ') : null;
    },
    // Its solutions are prose proofs that mark no final answer (with them as outputs the grader finds the
    // answer in 202 of 675), so the reference check boxes final_answer instead.
    solution: () => null,
    id: (r, i) => str(r.id) ?? String(i),
  },
  mmlu_stem: {
    question: (r) => r.question,
    choices: (r) => list(r.choices).map((c) => str(c) ?? ''),
    reference: (r) => (typeof r.answer === 'number' || /^\d+$/.test(String(r.answer)) ? choiceLetter(Number(r.answer)) : str(r.answer)),
    solution: () => null,
  },
};

export const BUILT_IN_NAMES = Object.keys(BUILT_IN);

/** Rows of a JSONL (one object a line) or Parquet file. */
export function readRecords(path: string): Row[] {
  if (!existsSync(path)) throw new EmpoError(`${path}: benchmark file not found`);
  if (extname(path) === '.parquet') {
    const table = parquetToTable(new Uint8Array(readFileSync(path)), path);
    return table.toArray().map((r) => {
      const o = (r as { toJSON(): Row }).toJSON();
      for (const [k, v] of Object.entries(o)) {
        if (v && typeof v === 'object' && 'toArray' in (v as object)) o[k] = Array.from((v as { toArray(): ArrayLike<unknown> }).toArray());
        else if (typeof v === 'bigint') o[k] = Number(v);
      }
      return o;
    });
  }
  return readFileSync(path, 'utf8').split('\n').flatMap((line, i) => {
    if (line.trim() === '') return [];
    try {
      return [JSON.parse(line) as Row];
    } catch (error) {
      throw new EmpoError(`${path}:${i + 1}: not a JSON object (${(error as Error).message})`);
    }
  });
}

/** Apply a template: {question} and {choices} ("A. text" lines). */
export function renderBenchmarkPrompt(template: string, question: string, choices?: readonly string[]): string {
  const listed = (choices ?? []).map((c, i) => `${choiceLetter(i) ?? String(i)}. ${c}`).join('\n');
  return template.split('{question}').join(question).split('{choices}').join(listed);
}

/** The items of one benchmark (a built-in name, or an object naming a custom file and its fields). */
export function loadBenchmark(spec: BenchmarkConfig, datasetsDir: string): BenchmarkItem[] {
  const cfg = typeof spec === 'string' ? { name: spec } : spec;
  const builtIn = BUILT_IN[cfg.name];
  const custom = typeof spec === 'object' && (spec.question_field !== undefined || spec.answer_field !== undefined || spec.choices_field !== undefined);
  const path = cfg.path ?? (builtIn ? join(datasetsDir, cfg.name, 'test.jsonl') : undefined);
  if (!path) throw new EmpoError(`benchmark '${cfg.name}': not a built-in benchmark (${BUILT_IN_NAMES.join(', ')}); give its path (and question_field, answer_field)`);
  const rows = readRecords(path);
  let def: BuiltIn;
  if (builtIn && !custom) def = builtIn;
  else {
    const q = cfg.question_field ?? 'question';
    const a = cfg.answer_field ?? 'answer';
    const c = cfg.choices_field;
    def = {
      question: (r) => r[q],
      reference: (r) => {
        const v = r[a];
        if (c !== undefined && (typeof v === 'number' || /^\d+$/.test(String(v)))) return choiceLetter(Number(v));
        const s = str(v);
        return s === null ? null : c !== undefined ? referenceAnswer(s, 'choice') : referenceAnswer(s, 'math');
      },
      solution: (r) => str(r[a]),
      choices: c === undefined ? undefined : (r) => list(r[c]).map((x) => str(x) ?? ''),
    };
    if (rows.length && rows[0]![q] === undefined) throw new EmpoError(`${path}: no field '${q}' (set question_field)`);
    if (rows.length && rows[0]![a] === undefined) throw new EmpoError(`${path}: no field '${a}' (set answer_field)`);
  }
  const choiceMode = def.choices !== undefined;
  const template = cfg.template ?? (choiceMode ? CHOICE_TEMPLATE : MATH_TEMPLATE);
  const limited = cfg.limit !== undefined ? rows.slice(0, cfg.limit) : rows;
  return limited.map((r, i) => {
    const question = str(def.question(r));
    const reference = def.reference(r);
    if (question === null || reference === null || reference === '') {
      throw new EmpoError(`${path}: row ${i + 1} has no ${question === null ? 'question' : 'reference answer'}`);
    }
    const choices = def.choices?.(r);
    return {
      benchmark: cfg.name,
      question_id: `${cfg.name}/${def.id ? def.id(r, i) : String(i)}`,
      question,
      reference,
      mode: choiceMode ? 'choice' : 'math',
      ...(choices ? { choices } : {}),
      prompt: renderBenchmarkPrompt(template, question, choices),
      solution: def.solution(r),
    } satisfies BenchmarkItem;
  });
}

export function loadBenchmarks(specs: readonly BenchmarkConfig[], datasetsDir: string): BenchmarkItem[] {
  const items = specs.flatMap((s) => loadBenchmark(s, datasetsDir));
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.question_id)) throw new EmpoError(`benchmark question id '${it.question_id}' appears twice (a benchmark listed twice?)`);
    seen.add(it.question_id);
  }
  return items;
}

export interface ReferenceMiss {
  question_id: string;
  reference: string;
  extracted: string | null;
  cause: string;
}

export interface ReferenceCheck {
  benchmark: string;
  questions: number;
  correct: number;
  accuracy: number;
  /** Where the output was the dataset's worked solution (else `\boxed{reference}`). */
  fromSolutions: number;
  misses: ReferenceMiss[];
}

/**
 * Grade each item's reference solution as if a model had written it: the dataset's worked solution when
 * it has one, else "The final answer is \boxed{reference}". A sound loader + grader scores 100%; each miss
 * is listed with its cause.
 */
export function checkReferences(items: readonly BenchmarkItem[], useSolutions = true): ReferenceCheck[] {
  const by = new Map<string, BenchmarkItem[]>();
  for (const it of items) {
    let l = by.get(it.benchmark);
    if (!l) by.set(it.benchmark, (l = []));
    l.push(it);
  }
  return [...by].map(([benchmark, list]) => {
    const misses: ReferenceMiss[] = [];
    let fromSolutions = 0;
    for (const it of list) {
      const solution = useSolutions && it.solution ? it.solution : null;
      if (solution) fromSolutions++;
      const output = solution ?? `The final answer is \\boxed{${it.reference}}.`;
      const { extracted, correct } = gradeResponse(output, it.reference, it.mode, { choices: it.choices });
      if (!correct) {
        misses.push({
          question_id: it.question_id, reference: it.reference, extracted,
          cause: extracted === null
            ? `no answer could be extracted from the ${solution ? 'solution' : 'boxed reference'}`
            : `extracted ${JSON.stringify(extracted)} is not judged equivalent to the reference ${JSON.stringify(it.reference)}`,
        });
      }
    }
    const correct = list.length - misses.length;
    return { benchmark, questions: list.length, correct, accuracy: list.length ? correct / list.length : 0, fromSolutions, misses };
  });
}
