export { clusterGroup, clusterRollouts, groupByQuestion } from './cluster.ts';
export { clustererStep, runClusterer } from './stage.ts';
