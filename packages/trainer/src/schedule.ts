/** Learning rate at `step` (1-based) of `total`: linear warmup, then constant or cosine decay to `minRatio`. */
export function learningRateAt(
  step: number,
  total: number,
  schedule: { base: number; warmupSteps: number; kind: 'constant' | 'cosine'; minRatio?: number },
): number {
  const { base, warmupSteps, kind, minRatio = 0.1 } = schedule;
  if (warmupSteps > 0 && step <= warmupSteps) return (base * step) / warmupSteps;
  if (kind === 'constant') return base;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, total - warmupSteps));
  return base * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
