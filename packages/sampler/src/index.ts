export { questionsForStep } from './select.ts';
export { renderPrompt } from './prompt.ts';
export { sampleRollouts, type SampleOptions } from './sample.ts';
export { readTrainQueries, runSampler, sampleStep } from './stage.ts';
