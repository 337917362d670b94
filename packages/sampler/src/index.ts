export { questionsForStep } from './select.ts';
export { renderPrompt } from './prompt.ts';
export { sampleRollouts, sampleRolloutsRemote, type SampleOptions } from './sample.ts';
export { readTrainQueries, runSampler, sampleStep } from './stage.ts';
