/**
 * The tables the stages exchange. Every Parquet file a stage reads is checked against one
 * of these specs: a missing or mistyped column is an error naming the file and the column.
 * Extra columns are allowed and ignored.
 */
export type ColumnType = 'utf8' | 'int32' | 'float32' | 'float64' | 'bool' | 'list<int32>' | 'list<float32>';

export interface ColumnSpec {
  name: string;
  type: ColumnType;
  nullable?: boolean;
  doc: string;
}

export interface TableSpec {
  name: string;
  doc: string;
  columns: ColumnSpec[];
}

/** Unlabeled training questions: no answer column, so training can never read a label. */
export const queriesSpec: TableSpec = {
  name: 'queries',
  doc: 'Unlabeled questions for training.',
  columns: [
    { name: 'question_id', type: 'utf8', doc: 'Stable id of the question.' },
    { name: 'question', type: 'utf8', doc: 'The question text (the prompt template is applied by the sampler).' },
  ],
};

/** Labeled questions for evaluation only. */
export const labeledQueriesSpec: TableSpec = {
  name: 'labeled queries',
  doc: 'Questions with reference answers, read by the evaluator only.',
  columns: [
    ...queriesSpec.columns,
    { name: 'answer', type: 'utf8', doc: 'Reference final answer (or a solution ending in \\boxed{}).' },
  ],
};

export const rolloutsSpec: TableSpec = {
  name: 'rollouts',
  doc: 'G sampled completions per question, with the sampling policy\'s per-token log-probs.',
  columns: [
    { name: 'step', type: 'int32', doc: 'Training step these rollouts feed.' },
    { name: 'question_id', type: 'utf8', doc: 'Id from the queries file.' },
    { name: 'question', type: 'utf8', doc: 'The question text.' },
    { name: 'sample_index', type: 'int32', doc: 'Index of the sample within its group, 0..G-1.' },
    { name: 'prompt', type: 'utf8', doc: 'Prompt text given to the model.' },
    { name: 'completion', type: 'utf8', doc: 'Decoded completion (special tokens removed).' },
    { name: 'prompt_ids', type: 'list<int32>', doc: 'Prompt token ids (BOS included when the model uses one).' },
    { name: 'completion_ids', type: 'list<int32>', doc: 'Completion token ids (EOS included when generated).' },
    { name: 'logprobs', type: 'list<float32>', doc: 'Sampling policy log-prob of each completion token (temperature applied, before top-p).' },
    { name: 'finished', type: 'bool', doc: 'True when the completion ended with EOS before max_new_tokens.' },
  ],
};

export const clustersSpec: TableSpec = {
  name: 'clusters',
  doc: 'Extracted answers, semantic clusters, rewards and the entropy filter, one row per rollout.',
  columns: [
    { name: 'step', type: 'int32', doc: 'Training step.' },
    { name: 'question_id', type: 'utf8', doc: 'Id of the question.' },
    { name: 'sample_index', type: 'int32', doc: 'Index of the sample within its group.' },
    { name: 'answer', type: 'utf8', nullable: true, doc: 'Extracted final answer; null when none could be extracted.' },
    { name: 'cluster_id', type: 'int32', doc: 'Semantic cluster within the question\'s group (0 = first seen).' },
    { name: 'cluster_size', type: 'int32', doc: 'Number of samples in that cluster.' },
    { name: 'reward', type: 'float32', doc: 'Reward of the sample (EMPO: share of its cluster; 0 when unextractable).' },
    { name: 'entropy', type: 'float32', doc: 'Semantic entropy of the question\'s group (natural log).' },
    { name: 'keep', type: 'bool', doc: 'Whether the question passed the entropy filter and is used for the update.' },
  ],
};

export const metricsSpec: TableSpec = {
  name: 'metrics',
  doc: 'One row per training step.',
  columns: [
    { name: 'step', type: 'int32', doc: 'Training step.' },
    { name: 'loss', type: 'float64', doc: 'Policy-gradient loss of the update (mean over micro-batches).' },
    { name: 'reward', type: 'float64', doc: 'Mean reward over all rollouts.' },
    { name: 'reward_std', type: 'float64', doc: 'Standard deviation of the reward over all rollouts.' },
    { name: 'semantic_entropy', type: 'float64', doc: 'Mean semantic entropy over questions.' },
    { name: 'kept_fraction', type: 'float64', doc: 'Share of questions kept by the entropy filter.' },
    { name: 'distinct_answer_share', type: 'float64', doc: 'Distinct majority answers / questions (collapse alarm when it drops).' },
    { name: 'clip_ratio', type: 'float64', doc: 'Share of completion tokens whose ratio was clipped.' },
    { name: 'kl', type: 'float64', doc: 'Mean k3 KL estimate to the reference model per completion token (0 when beta = 0).' },
    { name: 'policy_entropy', type: 'float64', doc: 'Token entropy of the sampling policy, estimated as the mean -log p of sampled tokens.' },
    { name: 'grad_norm', type: 'float64', doc: 'Global gradient norm before clipping.' },
    { name: 'learning_rate', type: 'float64', doc: 'Learning rate used for the update.' },
    { name: 'completion_length', type: 'float64', doc: 'Mean completion length in tokens.' },
    { name: 'tokens_per_second', type: 'float64', doc: 'Training tokens (prompt+completion) processed per second.' },
    { name: 'seconds', type: 'float64', doc: 'Wall time of the update.' },
  ],
};

export const evalSamplesSpec: TableSpec = {
  name: 'eval samples',
  doc: 'Per-sample evaluation results, so any answer can be traced.',
  columns: [
    { name: 'question_id', type: 'utf8', doc: 'Id of the question.' },
    { name: 'question', type: 'utf8', doc: 'Question text.' },
    { name: 'reference', type: 'utf8', doc: 'Reference answer.' },
    { name: 'sample_index', type: 'int32', doc: '-1 for the greedy completion, 0..k-1 for samples.' },
    { name: 'completion', type: 'utf8', doc: 'Model completion.' },
    { name: 'answer', type: 'utf8', nullable: true, doc: 'Extracted answer.' },
    { name: 'correct', type: 'bool', doc: 'Whether the answer is equivalent to the reference.' },
  ],
};

export const tableSpecs = { queriesSpec, labeledQueriesSpec, rolloutsSpec, clustersSpec, metricsSpec, evalSamplesSpec };

export interface QueryRow { question_id: string; question: string }
export interface LabeledQueryRow extends QueryRow { answer: string }
export interface RolloutRow {
  step: number; question_id: string; question: string; sample_index: number; prompt: string; completion: string;
  prompt_ids: number[]; completion_ids: number[]; logprobs: number[]; finished: boolean;
}
export interface ClusterRow {
  step: number; question_id: string; sample_index: number; answer: string | null; cluster_id: number;
  cluster_size: number; reward: number; entropy: number; keep: boolean;
}
export interface MetricsRow {
  step: number; loss: number; reward: number; reward_std: number; semantic_entropy: number; kept_fraction: number;
  distinct_answer_share: number; clip_ratio: number; kl: number; policy_entropy: number; grad_norm: number; learning_rate: number;
  completion_length: number; tokens_per_second: number; seconds: number;
}
export interface EvalSampleRow {
  question_id: string; question: string; reference: string; sample_index: number; completion: string;
  answer: string | null; correct: boolean;
}

/** Supervised pairs for `empo sft` (pretraining the tiny model, the SFT baseline). */
export const sftSpec: TableSpec = {
  name: 'sft pairs',
  doc: 'Prompt and completion text; the loss is taken on completion tokens only.',
  columns: [
    { name: 'prompt', type: 'utf8', doc: 'Prompt text, exactly as the sampler renders it.' },
    { name: 'completion', type: 'utf8', doc: 'Target completion.' },
  ],
};
export interface SftRow { prompt: string; completion: string }
