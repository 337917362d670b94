export { questionsForStep } from './select.ts';
export { renderPrompt } from './prompt.ts';
export { sampleRollouts, sampleRolloutsParallel, sampleRolloutsRemote, type SampleOptions } from './sample.ts';
export { readTrainQueries, runSampler, sampleStep, sampleStepParallel } from './stage.ts';
export { checkRunInputs, runInputsPath, type RunInputs } from './inputs.ts';
