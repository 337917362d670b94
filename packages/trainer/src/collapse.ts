import { existsSync } from 'node:fs';
import { metricsSpec, readParquetRows, type ClusterRow, type MetricsRow, type RunLayout, type TrainerConfig } from '@empo/core';

/** The label-free signals of one batch that collapse shows in. */
export interface BatchSignals {
  /** Mean semantic entropy over the batch's questions. */
  semantic_entropy: number;
  /** Distinct majority answers / questions: falls towards 1/Q when every question gets the same answer. */
  distinct_answer_share: number;
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
}

/** Signals of a batch from its cluster rows (one row per sample; entropy repeated per question). */
export function batchSignals(clusters: readonly ClusterRow[]): BatchSignals {
  const byQuestion = new Map<string, ClusterRow[]>();
  for (const c of clusters) {
    let group = byQuestion.get(c.question_id);
    if (!group) byQuestion.set(c.question_id, (group = []));
    group.push(c);
  }
  const groups = [...byQuestion.values()];
  const majorityAnswers = groups.map((g) => g.reduce((a, b) => (b.cluster_size > a.cluster_size ? b : a)).answer);
  const distinct = new Set(majorityAnswers.filter((a) => a !== null)).size;
  return {
    semantic_entropy: mean(groups.map((g) => g[0]!.entropy)),
    distinct_answer_share: groups.length ? distinct / groups.length : 0,
  };
}

/**
 * The collapse guards: `history` holds the signals of steps 1..k-1 (only its first and last
 * collapse_window entries are read), `current` those of step k
 * (sampled from the model of step k-1, before its update). Returns why training should stop, or
 * null. Both guards average collapse_window batches and read no label.
 */
export function collapseAlarm(history: readonly BatchSignals[], current: BatchSignals, t: TrainerConfig): string | null {
  const all = [...history, current];
  const w = t.collapse_window;
  if (all.length < w) return null;
  const recent = all.slice(-w);
  const step = all.length;
  const entropy = mean(recent.map((s) => s.semantic_entropy));
  if (t.collapse_entropy_floor !== null && entropy < t.collapse_entropy_floor) {
    return `mean semantic entropy of steps ${step - w + 1}-${step} is ${entropy.toFixed(3)}, below trainer.collapse_entropy_floor ` +
      `${t.collapse_entropy_floor}: the samples no longer disagree (entropy collapse)`;
  }
  if (t.collapse_distinct_ratio !== null && all.length > w) {
    const first = mean(all.slice(0, w).map((s) => s.distinct_answer_share));
    const now = mean(recent.map((s) => s.distinct_answer_share));
    if (now < t.collapse_distinct_ratio * first) {
      return `distinct majority answers across questions fell from ${(first * 100).toFixed(0)}% (steps 1-${w}) to ` +
        `${(now * 100).toFixed(0)}% (steps ${step - w + 1}-${step}), below trainer.collapse_distinct_ratio ${t.collapse_distinct_ratio} ` +
        'of the start: the questions are collapsing to the same answers';
    }
  }
  return null;
}

/**
 * The guards for step `step` of a run, with the earlier steps' signals taken from `known` (a training session's
 * recent metrics, TrainerSession.knownMetrics, whose files may still be being written) or else read from their
 * metrics.parquet. Only the first and the last collapse_window steps are read (the guards look at
 * nothing else), so the check costs the same at step 10 and at step 10,000; the steps in between
 * stay holes in the history array.
 */
export function checkCollapse(
  layout: RunLayout,
  t: TrainerConfig,
  step: number,
  clusters: readonly ClusterRow[],
  known: ReadonlyMap<number, MetricsRow> = new Map(),
): string | null {
  const w = t.collapse_window;
  const history: BatchSignals[] = new Array(step - 1);
  const needed = new Set<number>();
  for (let s = 1; s <= Math.min(w, step - 1); s++) needed.add(s);
  for (let s = Math.max(1, step - w + 1); s < step; s++) needed.add(s);
  for (const s of needed) {
    const row = known.get(s);
    if (row) {
      history[s - 1] = row;
      continue;
    }
    const path = layout.metricsPath(s);
    if (!existsSync(path)) return null; // a run whose earlier steps were not trained here has no history to judge
    history[s - 1] = readParquetRows<MetricsRow>(path, metricsSpec)[0]!;
  }
  return collapseAlarm(history, batchSignals(clusters), t);
}
