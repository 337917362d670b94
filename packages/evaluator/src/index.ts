export { evaluateGreedy, summarize, type EvalSummary } from './evaluate.ts';
export { runEvaluator } from './stage.ts';
