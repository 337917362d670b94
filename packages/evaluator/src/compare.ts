import { join } from 'node:path';
import { EmpoError, RunLayout, evalSamplesSpec, readParquetRows, type EvalSampleRow } from '@empo/core';
import { questionMetrics } from './metrics.ts';

/** A difference between two models on the same questions, with its 95% confidence interval. */
export interface PairedDifference {
  /** Mean of (after - before) over questions, as a fraction (0.02 = +2 points). */
  delta: number;
  /** 95% interval of delta (normal approximation of the paired mean). */
  ci95: [number, number];
  /** Questions compared. */
  questions: number;
}

/** "+4.6 [+3.3, +5.8]": a difference in points with its 95% interval, '–' when there is none; `minus` signs negative figures. */
export function formatDifference(d: PairedDifference | null | undefined, minus = '-'): string {
  const points = (x: number) => `${x >= 0 ? '+' : minus}${Math.abs(x * 100).toFixed(1)}`;
  return d ? `${points(d.delta)} [${points(d.ci95[0])}, ${points(d.ci95[1])}]` : '–';
}

/** Greedy, mean@k and maj@k differences between two evaluations of the same questions. */
export interface EvalComparison {
  greedy_accuracy: PairedDifference;
  mean_accuracy: PairedDifference | null;
  maj_accuracy: PairedDifference | null;
}

/**
 * Paired difference of per-question scores: the two evaluations share their questions, so the
 * question-to-question spread cancels and the interval is the evaluation noise of the change
 * itself. 0/1 scores (greedy, maj@k) use the Agresti-Min interval (the paired Wald interval
 * with half a question added to each cell of the 2x2 table), which stays honest when few or no
 * questions changed; the plain Wald interval is then zero-width. Other scores (mean@k) use the
 * normal interval of the mean paired difference.
 */
export function pairedDifference(before: readonly number[], after: readonly number[]): PairedDifference {
  if (before.length !== after.length) throw new RangeError(`paired scores differ in length: ${before.length} vs ${after.length}`);
  const n = before.length;
  if (n === 0) return { delta: 0, ci95: [0, 0], questions: 0 };
  const d = after.map((a, i) => a - before[i]!);
  const mean = d.reduce((s, x) => s + x, 0) / n;
  const binary = [...before, ...after].every((x) => x === 0 || x === 1);
  if (binary) {
    const gained = d.filter((x) => x === 1).length + 0.5;
    const lost = d.filter((x) => x === -1).length + 0.5;
    const total = n + 2;
    const centre = (gained - lost) / total;
    const half = 1.96 * Math.sqrt((gained + lost - (gained - lost) ** 2 / total) / total ** 2);
    return { delta: mean, ci95: [centre - half, centre + half], questions: n };
  }
  const variance = n > 1 ? d.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  const half = 1.96 * Math.sqrt(variance / n);
  return { delta: mean, ci95: [mean - half, mean + half], questions: n };
}

/** Per-question scores of one evaluation's samples: greedy 0/1, mean@k, maj@k 0/1 (k = 0: null). */
export function questionScores(rows: readonly EvalSampleRow[]): Map<string, { greedy: number; mean: number | null; majority: number | null }> {
  const byQuestion = new Map<string, EvalSampleRow[]>();
  for (const r of rows) {
    let group = byQuestion.get(r.question_id);
    if (!group) byQuestion.set(r.question_id, (group = []));
    group.push(r);
  }
  const scores = new Map<string, { greedy: number; mean: number | null; majority: number | null }>();
  for (const [id, group] of byQuestion) {
    const greedy = group.find((r) => r.sample_index < 0);
    const samples = group.filter((r) => r.sample_index >= 0);
    const q = samples.length ? questionMetrics({ answers: samples.map((s) => s.answer), correct: samples.map((s) => s.correct) }) : null;
    scores.set(id, { greedy: greedy?.correct ? 1 : 0, mean: q ? q.mean : null, majority: q ? q.majority : null });
  }
  return scores;
}

/** Compare two evaluations' per-question scores (the questions of `before` must all be in `after`). */
export function compareScores(
  before: ReturnType<typeof questionScores>, after: ReturnType<typeof questionScores>, source = 'evaluations',
): EvalComparison {
  const ids = [...before.keys()];
  const missing = ids.find((id) => !after.has(id));
  if (missing !== undefined || after.size !== before.size) {
    throw new EmpoError(`${source}: the two evaluations do not cover the same questions (e.g. ${missing ?? 'a different count'})`);
  }
  const pick = (key: 'greedy' | 'mean' | 'majority') => {
    const a = ids.map((id) => before.get(id)![key]);
    const b = ids.map((id) => after.get(id)![key]);
    return a.some((x) => x === null) || b.some((x) => x === null) ? null : pairedDifference(a as number[], b as number[]);
  };
  return { greedy_accuracy: pick('greedy')!, mean_accuracy: pick('mean'), maj_accuracy: pick('majority') };
}

/** Compare the evaluations of two steps of a run (<run>/eval/step-k/samples.parquet). */
export function compareSteps(layout: RunLayout, before: number, after: number): EvalComparison {
  const read = (step: number) => readParquetRows<EvalSampleRow>(join(layout.evalDir(step), 'samples.parquet'), evalSamplesSpec);
  return compareScores(questionScores(read(before)), questionScores(read(after)), `${layout.evalDir(before)} and ${layout.evalDir(after)}`);
}
