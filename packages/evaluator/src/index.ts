export {
  BUILT_IN_NAMES, CHOICE_TEMPLATE, MATH_TEMPLATE, checkReferences, loadBenchmark, loadBenchmarks, readRecords, renderBenchmarkPrompt,
  type BenchmarkItem, type ReferenceCheck, type ReferenceMiss,
} from './benchmarks.ts';
export {
  evaluateItems, evaluateItemsParallel, evaluateItemsRemote, evaluatePolicy, evaluatePolicyParallel, gradeItem, itemsFromQueries, summarize, summarizeBenchmarks,
  type BenchmarkEvalSummary, type BenchmarkSampleRow, type EvalItem, type EvalSummary,
} from './evaluate.ts';
export { passAtK, questionMetrics, type QuestionSamples } from './metrics.ts';
export { lineChart, type Series } from './plot.ts';
export { readRunData, renderReport, runPlots, writeReport, type RunData } from './report.ts';
export { benchmarkSamplesSpec, evalItems, evaluateStep, evaluateStepParallel, readEvalQueries, runEvaluator, writeEvalResults } from './stage.ts';
export { compareScores, compareSteps, formatDifference, pairedDifference, questionScores, type EvalComparison, type PairedDifference } from './compare.ts';
export { evalInputs, evalInputsKey } from './inputs.ts';
