export { clusterGroup, clusterRollouts, groupByQuestion } from './cluster.ts';
export { clusterStep, clustererStep, readGoldAnswers, runClusterer } from './stage.ts';
