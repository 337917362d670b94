export { clusterGroup, clusterRollouts, groupByQuestion } from './cluster.ts';
export { clusterStep, clustererStep, runClusterer } from './stage.ts';
