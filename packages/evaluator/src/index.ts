export { evaluatePolicy, summarize, type EvalSummary } from './evaluate.ts';
export { passAtK, questionMetrics, type QuestionSamples } from './metrics.ts';
export { lineChart, type Series } from './plot.ts';
export { readRunData, renderReport, runPlots, writeReport, type RunData } from './report.ts';
export { evaluateStep, readEvalQueries, runEvaluator } from './stage.ts';
