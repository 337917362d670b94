export { questionsForStep } from './select.ts';
export { renderPrompt } from './prompt.ts';
export { sampleRollouts, type SampleOptions } from './sample.ts';
export { runSampler } from './stage.ts';
