import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  EmpoError, RunLayout, clustersSpec, metricsSpec, parseStepName, readParquetRows, rolloutsSpec, writeFileAtomic,
  type ClusterRow, type MetricsRow, type RolloutRow,
} from '@empo/core';
import { compareSteps, formatDifference, type EvalComparison, type PairedDifference } from './compare.ts';
import type { BenchmarkEvalSummary, EvalSummary } from './evaluate.ts';
import { escapeXml, lineChart } from './plot.ts';

export interface RunData {
  run: string;
  metrics: MetricsRow[];
  /** Held-out evaluations by step (with per-benchmark figures when benchmarks were evaluated). */
  evals: (EvalSummary & Partial<Pick<BenchmarkEvalSummary, 'benchmarks'>>)[];
  samples: { rollouts: RolloutRow[]; clusters: ClusterRow[]; step: number } | null;
  /** The final evaluation minus the base's, paired by question (null when either has no samples.parquet). */
  change?: EvalComparison | null;
}

/** Everything the report shows, read from a run folder. */
export function readRunData(layout: RunLayout): RunData {
  const metrics = layout.stepsWith('metrics.parquet').flatMap((s) => readParquetRows<MetricsRow>(layout.metricsPath(s), metricsSpec));
  const evalRoot = join(layout.root, 'eval');
  const evals = existsSync(evalRoot)
    ? readdirSync(evalRoot)
      .filter((name) => parseStepName(name) !== null && existsSync(join(evalRoot, name, 'summary.json')))
      .map((name) => JSON.parse(readFileSync(join(evalRoot, name, 'summary.json'), 'utf8')) as RunData['evals'][number])
      .sort((a, b) => a.step - b.step)
    : [];
  const withClusters = layout.stepsWith('clusters.parquet');
  const last = withClusters.at(-1);
  const samples = last !== undefined && existsSync(layout.rolloutsPath(last))
    ? { step: last, rollouts: readParquetRows<RolloutRow>(layout.rolloutsPath(last), rolloutsSpec), clusters: readParquetRows<ClusterRow>(layout.clustersPath(last), clustersSpec) }
    : null;
  return { run: layout.run, metrics, evals, samples, change: baseToFinal(layout, evals) };
}

/** The final evaluation against the base's, paired by question; null without both samples files or when they cover different questions. */
function baseToFinal(layout: RunLayout, evals: RunData['evals']): EvalComparison | null {
  const final = evals.at(-1);
  if (evals[0]?.step !== 0 || !final || final.step === 0) return null;
  if (![0, final.step].every((s) => existsSync(join(layout.evalDir(s), 'samples.parquet')))) return null;
  try {
    return compareSteps(layout, 0, final.step);
  } catch (e) {
    if (e instanceof EmpoError) return null; // e.g. a periodic evaluation on fewer questions came last
    throw e;
  }
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const num = (x: number | null | undefined, digits = 3) => (x === null || x === undefined ? '–' : x.toFixed(digits));
const delta = (d: PairedDifference | null | undefined) => formatDifference(d, '−');

function table(headers: string[], rows: string[][], id?: string): string {
  return `<table${id ? ` id="${id}"` : ''}><thead><tr>${headers.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('') + '</tbody></table>';
}

/** Benchmarks seen in any evaluation, in first-seen order. */
function benchmarkNames(data: RunData): string[] {
  return [...new Set(data.evals.flatMap((e) => Object.keys(e.benchmarks ?? {})))];
}

/** The plots of a run as SVG documents, by file name. */
export function runPlots(data: RunData): Record<string, string> {
  const steps = (f: (m: MetricsRow) => number) => data.metrics.map((m) => ({ x: m.step, y: f(m) }));
  const evalSeries = (name: string, f: (e: RunData['evals'][number]) => number | null) =>
    ({ name, points: data.evals.filter((e) => f(e) !== null).map((e) => ({ x: e.step, y: f(e)! })) });
  return {
    'reward.svg': lineChart('Training reward', [
      { name: 'reward (mean)', points: steps((m) => m.reward) },
      { name: 'kept questions', points: steps((m) => m.kept_fraction) },
    ], { xLabel: 'step' }),
    'entropy.svg': lineChart('Semantic entropy', [
      { name: 'training questions', points: steps((m) => m.semantic_entropy) },
      evalSeries('held-out', (e) => e.semantic_entropy),
    ], { xLabel: 'step', yLabel: 'nats' }),
    'accuracy.svg': lineChart('Held-out accuracy', [
      evalSeries('greedy', (e) => e.greedy_accuracy),
      evalSeries('mean@k', (e) => e.mean_accuracy),
      evalSeries('maj@k', (e) => e.maj_accuracy),
    ], { xLabel: 'step' }),
    ...(benchmarkNames(data).length > 1 ? {
      'benchmarks.svg': lineChart('Greedy accuracy per benchmark', benchmarkNames(data).map((b) =>
        evalSeries(b, (e) => e.benchmarks?.[b]?.greedy_accuracy ?? null)), { xLabel: 'step' }),
    } : {}),
    'diversity.svg': lineChart('Answer diversity across questions', [
      { name: 'distinct majority answers', points: steps((m) => m.distinct_answer_share) },
    ], { xLabel: 'step' }),
  };
}

/** A self-contained HTML page: headline table, plots (inline SVG), per-step metrics and sample answers. */
export function renderReport(data: RunData): string {
  const plots = runPlots(data);
  const base = data.evals.find((e) => e.step === 0);
  const final = data.evals.at(-1);
  const headline = base && final && final.step !== 0
    ? table(['model', 'greedy accuracy', 'mean@k', 'maj@k', 'pass@k', 'semantic entropy'], [
      [`base (step 0)`, pct(base.greedy_accuracy), pct(base.mean_accuracy), pct(base.maj_accuracy), pct(base.pass_at_k), num(base.semantic_entropy)],
      [`EMPO (step ${final.step})`, pct(final.greedy_accuracy), pct(final.mean_accuracy), pct(final.maj_accuracy), pct(final.pass_at_k), num(final.semantic_entropy)],
      ...(data.change ? [['change in points, 95% interval paired by question', delta(data.change.greedy_accuracy), delta(data.change.mean_accuracy),
        delta(data.change.maj_accuracy), '–', '–']] : []),
    ], 'headline')
    : '<p>No base and final evaluation yet (run <code>npx empo eval --step 0</code> and <code>npx empo eval</code>).</p>';
  const metricRows = data.metrics.map((m) => [String(m.step), num(m.reward), num(m.semantic_entropy), pct(m.kept_fraction),
    pct(m.distinct_answer_share), num(m.loss, 4), num(m.kl, 4), num(m.clip_ratio), num(m.grad_norm), num(m.completion_length, 1)]);
  const evalRows = data.evals.map((e) => [String(e.step), String(e.questions), pct(e.greedy_accuracy), pct(e.mean_accuracy), pct(e.maj_accuracy),
    pct(e.pass_at_k), num(e.semantic_entropy), pct(e.unextractable)]);
  const benchRows = data.evals.flatMap((e) => Object.entries(e.benchmarks ?? {}).map(([b, s]) => [String(e.step), b, String(s.questions),
    pct(s.greedy_accuracy), pct(s.mean_accuracy), pct(s.maj_accuracy), pct(s.pass_at_k), num(s.semantic_entropy)]));
  let samples = '';
  if (data.samples) {
    const byKey = new Map(data.samples.clusters.map((c) => [`${c.question_id}#${c.sample_index}`, c]));
    const questions = [...new Set(data.samples.rollouts.map((r) => r.question_id))].slice(0, 4);
    samples = questions.map((q) => {
      const rows = data.samples!.rollouts.filter((r) => r.question_id === q);
      const c0 = byKey.get(`${q}#${rows[0]!.sample_index}`);
      return `<h3>${escapeXml(rows[0]!.question)} <small>entropy ${num(c0?.entropy)}, ${c0?.keep ? 'kept' : 'dropped'}</small></h3>` +
        table(['sample', 'completion', 'answer', 'cluster', 'reward'], rows.map((r) => {
          const c = byKey.get(`${q}#${r.sample_index}`);
          return [String(r.sample_index), r.completion, c?.answer ?? '(none)', String(c?.cluster_id ?? ''), num(c?.reward)];
        }), 'samples');
    }).join('');
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>EMPO run ${escapeXml(data.run)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1120px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
small { color: #666; font-weight: normal; }
</style></head><body>
<h1>EMPO run <code>${escapeXml(data.run)}</code></h1>
<p>${data.metrics.length} training steps; held-out evaluations at steps ${data.evals.map((e) => e.step).join(', ') || 'none'}.
k = ${final?.samples ?? '–'} samples per question for mean@k, maj@k and semantic entropy.</p>
<h2>Base vs EMPO</h2>
${headline}
<h2>Held-out evaluations</h2>
${evalRows.length ? table(['step', 'questions', 'greedy', 'mean@k', 'maj@k', 'pass@k', 'semantic entropy', 'unextractable'], evalRows, 'evals') : '<p>No evaluations yet.</p>'}
${benchRows.length ? `<h3>Per benchmark</h3>\n${table(['step', 'benchmark', 'questions', 'greedy', 'mean@k', 'maj@k', 'pass@k', 'semantic entropy'], benchRows, 'benchmarks')}` : ''}
<h2>Curves</h2>
<div class="plots">${Object.values(plots).join('\n')}</div>
<h2>Per-step training metrics</h2>
${table(['step', 'reward', 'semantic entropy', 'kept', 'distinct answers', 'loss', 'KL', 'clip ratio', 'grad norm', 'length'], metricRows, 'metrics')}
<h2>Sample answers and their clusters (step ${data.samples?.step ?? '–'})</h2>
${samples || '<p>No rollouts yet.</p>'}
</body></html>
`;
}

/** Write <run>/report/index.html and the plots as separate SVG files. */
export function writeReport(layout: RunLayout): string {
  const data = readRunData(layout);
  const dir = join(layout.root, 'report');
  for (const [name, svg] of Object.entries(runPlots(data))) writeFileAtomic(join(dir, name), svg);
  const path = join(dir, 'index.html');
  writeFileAtomic(path, renderReport(data));
  return path;
}
