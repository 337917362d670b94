/**
 * Grader throughput: responses clustered per second, in groups of 16 typical math answers,
 * on one core (the grader is synchronous JavaScript; the compute engine runs in-process).
 *
 * Workloads
 *   graded   real model answers: the 450 labelled responses of ../shared/datasets/graded_responses
 *            (15 per question; a 16th drawn from the same question), mostly integers;
 *   math500  answers shaped like MATH-500's reference answers (fractions, radicals, pi,
 *            intervals, tuples, matrices, expressions): per group the true answer in several
 *            equivalent spellings (\dfrac, a/b, decimals, "x = ", spaces, $...$), two or three
 *            other references as wrong answers, and an unextractable one;
 *   distinct the worst case: 16 different non-numeric answers (polynomials, radicals, pi,
 *            complex numbers), so 16 clusters and every pair compared through the CAS.
 * Measures
 *   cluster   clusterAnswers on the extracted answers (the grader's clustering);
 *   pipeline  extractAnswer + guardAnswers + clusterAnswers + semanticEntropy + empo reward
 *             from the raw responses (what the clusterer stage does per group);
 *   cold      the CAS analysis cache is cleared before every group (every distinct answer is
 *             parsed again); warm keeps it (answers repeat across groups and steps).
 *
 *   npx tsx bench/grader.ts [--groups N] [--json]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '@empo/core';
import {
  clearSymbolicCache,
  clusterAnswers,
  extractAnswer,
  getReward,
  guardAnswers,
  parseNumber,
  normalizeMathAnswer,
  referenceAnswer,
  semanticEntropy,
  symbolicStats,
} from '@empo/grader';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const groupsPerRun = Number(flag('--groups') ?? 0) || 2000;
const asJson = args.includes('--json');
const G = 16;

const datasets = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'datasets');

function readJsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
}

/** Answers shaped like MATH-500 references, used when the dataset folder is absent. */
const FALLBACK_ANSWERS = [
  '3', '\\frac{14}{3}', '\\sqrt{2}', '2\\sqrt{5}', '\\frac{\\pi}{4}', '(3, \\frac{\\pi}{2})', '[-2, 7)', '\\{1, -2\\}', '-1, 2',
  'x^2+7x+10', '\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}', '1+2i', 'y = 2x - 3', 'x \\le 4', '\\frac{\\sqrt{3}}{2}', '0.25', '100',
  '\\text{(C)}', '6 - 5i', '(-\\infty, 1]', '\\frac{1}{2}', '90^\\circ', '12\\%', '\\$32.50',
];

/** Equivalent spellings of an answer, as different models write it. */
function spellings(answer: string): string[] {
  const out = new Set([answer]);
  out.add(answer.replace(/\\frac/g, '\\dfrac'));
  out.add(answer.replace(/,\s*/g, ', '));
  out.add(`$${answer}$`);
  if (!/[=,<>\\]|\\le|\\ge/.test(answer)) out.add(`x = ${answer}`);
  const frac = /^\\frac\{(\d+)\}\{(\d+)\}$/.exec(answer);
  if (frac) out.add(`${frac[1]}/${frac[2]}`);
  const value = parseNumber(normalizeMathAnswer(answer));
  if (value !== null && Number.isFinite(value)) {
    const short = Number(value.toPrecision(12));
    if (String(short).length <= 8) out.add(String(short));
    if (Number.isInteger(value)) out.add(`${value}.0`);
  }
  return [...out];
}

interface Workload {
  name: string;
  /** Groups of G raw responses. */
  responses: string[][];
}

function boxed(answer: string, rng: Rng): string {
  const k = rng.int(3);
  if (k === 0) return `Let me work it out step by step... so the answer is $\\boxed{${answer}}$.`;
  if (k === 1) return `We compute the quantity carefully.\nTherefore, the final answer is $\\boxed{${answer}}$. I hope it is correct.`;
  return `Reasoning about the problem gives \\[\\boxed{${answer}}\\]`;
}

function math500Workload(rng: Rng, groups: number): Workload {
  const path = join(datasets, 'math500', 'test.jsonl');
  const refs = existsSync(path)
    ? readJsonl<{ answer: string }>(path).map((r) => referenceAnswer(r.answer) ?? '').filter((a) => a.length > 0 && a.length < 120)
    : FALLBACK_ANSWERS;
  const responses: string[][] = [];
  for (let g = 0; g < groups; g++) {
    const truth = refs[rng.int(refs.length)]!;
    const forms = spellings(truth);
    const wrong = Array.from({ length: 2 + rng.int(2) }, () => refs[rng.int(refs.length)]!);
    const group: string[] = [];
    const nTrue = 8 + rng.int(4);
    for (let i = 0; i < nTrue; i++) group.push(boxed(forms[rng.int(forms.length)]!, rng));
    while (group.length < G - 1) {
      const w = wrong[rng.int(wrong.length)]!;
      const wf = spellings(w);
      group.push(boxed(wf[rng.int(wf.length)]!, rng));
    }
    group.push('I am not sure how to finish this.');
    // Shuffle (Fisher-Yates) so the true answer is not always first.
    for (let i = group.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [group[i], group[j]] = [group[j]!, group[i]!];
    }
    responses.push(group);
  }
  return { name: 'math500', responses };
}

/** Worst case: 16 different non-numeric answers per group (16 clusters, every pair through the CAS). */
function distinctWorkload(rng: Rng, groups: number): Workload {
  const shapes = [
    (a: number, b: number, c: number) => `${a}x^2+${b}x+${c}`,
    (a: number, b: number) => `\\frac{\\sqrt{${a}}}{${b}}`,
    (a: number, b: number) => `${a}\\sqrt{${b}}+${a + b}\\pi`,
    (a: number, b: number) => `(x+${a})(x-${b})`,
    (a: number, b: number) => `${a}+${b}i`,
    (a: number, b: number) => `\\frac{${a}\\pi}{${b}}`,
  ];
  const responses: string[][] = [];
  for (let g = 0; g < groups; g++) {
    const group: string[] = [];
    for (let i = 0; i < G; i++) {
      const shape = shapes[i % shapes.length]!;
      group.push(boxed(shape(2 + rng.int(97), 2 + rng.int(97), 1 + rng.int(50)), rng));
    }
    responses.push(group);
  }
  return { name: 'distinct', responses };
}

function gradedWorkload(rng: Rng, groups: number): Workload | null {
  const dir = join(datasets, 'graded_responses');
  if (!existsSync(dir)) return null;
  const questions: string[][] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()) {
    for (const row of readJsonl<{ outputs: { response: string }[] }>(join(dir, file))) {
      questions.push(row.outputs.map((o) => o.response.replaceAll('ки', '\n')));
    }
  }
  const responses: string[][] = [];
  for (let g = 0; g < groups; g++) {
    const q = questions[g % questions.length]!;
    responses.push([...q, q[rng.int(q.length)]!].slice(0, G));
  }
  return { name: 'graded', responses };
}

interface Result {
  workload: string;
  measure: 'cluster' | 'pipeline';
  cache: 'cold' | 'warm';
  groups: number;
  responses_per_s: number;
  ms_per_group_mean: number;
  ms_per_group_p99: number;
  ms_per_group_max: number;
  mean_clusters: number;
}

function measure(w: Workload, what: 'cluster' | 'pipeline', cache: 'cold' | 'warm'): Result {
  const reward = getReward('empo');
  const rng = new Rng(7);
  const extracted = w.responses.map((group) => group.map((r) => extractAnswer(r, 'math')));
  const times: number[] = [];
  let clusters = 0;
  // One untimed pass warms the JIT (and, for "warm", the analysis cache).
  for (let pass = 0; pass < 2; pass++) {
    times.length = 0;
    clusters = 0;
    clearSymbolicCache();
    for (let g = 0; g < w.responses.length; g++) {
      if (cache === 'cold') clearSymbolicCache();
      const start = performance.now();
      if (what === 'cluster') {
        clusters += clusterAnswers(extracted[g]!).clusterSizes.length;
      } else {
        const answers = guardAnswers(w.responses[g]!.map((r) => extractAnswer(r, 'math')));
        const { clusterIds, clusterSizes } = clusterAnswers(answers);
        semanticEntropy(clusterIds);
        reward({ answers, clusterIds, clusterSizes, rng });
        clusters += clusterSizes.length;
      }
      times.push(performance.now() - start);
    }
  }
  const total = times.reduce((s, t) => s + t, 0);
  const sorted = [...times].sort((a, b) => a - b);
  const n = w.responses.length;
  return {
    workload: w.name,
    measure: what,
    cache,
    groups: n,
    responses_per_s: Math.round((n * G) / (total / 1000)),
    ms_per_group_mean: Number((total / n).toFixed(3)),
    ms_per_group_p99: Number(sorted[Math.floor(0.99 * (n - 1))]!.toFixed(3)),
    ms_per_group_max: Number(sorted[n - 1]!.toFixed(3)),
    mean_clusters: Number((clusters / n).toFixed(2)),
  };
}

const rng = new Rng(2025);
const workloads = [gradedWorkload(rng, groupsPerRun), math500Workload(rng, groupsPerRun), distinctWorkload(rng, Math.ceil(groupsPerRun / 4))].filter(
  (w): w is Workload => w !== null,
);
const results: Result[] = [];
for (const w of workloads) {
  for (const what of ['cluster', 'pipeline'] as const) {
    for (const cache of ['cold', 'warm'] as const) results.push(measure(w, what, cache));
  }
}

const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, group_size: G };
if (asJson) {
  process.stdout.write(JSON.stringify({ machine, results, symbolic: symbolicStats() }, null, 2) + '\n');
} else {
  console.log(`grader throughput, groups of ${G} (${machine.cpu}, ${machine.cores} cores, node ${machine.node})`);
  console.log('workload  measure   cache  groups  responses/s  ms/group mean   p99    max  clusters');
  for (const r of results) {
    console.log(
      `${r.workload.padEnd(9)} ${r.measure.padEnd(9)} ${r.cache.padEnd(5)} ${String(r.groups).padStart(7)} ${String(r.responses_per_s).padStart(12)}` +
        ` ${r.ms_per_group_mean.toFixed(3).padStart(13)} ${r.ms_per_group_p99.toFixed(2).padStart(6)} ${r.ms_per_group_max.toFixed(2).padStart(6)} ${r.mean_clusters.toFixed(2).padStart(9)}`,
    );
  }
  if (!existsSync(datasets)) console.log(`(${datasets} absent: graded skipped, math500 uses built-in answers)`);
}
