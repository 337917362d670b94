export { clusterGroup, clusterRollouts, groupByQuestion } from './cluster.ts';
export { localYesNoScorer, makeJudge } from './judge.ts';
export { clusterStep, clustererStep, readGoldAnswers, runClusterer } from './stage.ts';
