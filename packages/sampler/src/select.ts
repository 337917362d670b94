import { Rng, type QueryRow } from '@empo/core';

/**
 * The questions of a training step. The data order is a seeded shuffle per epoch, and step k
 * takes the k-th slice of it, so the choice depends only on (seed, step): no cursor to save,
 * and a resumed run reads exactly the questions an uninterrupted run would.
 */
export function questionsForStep<T extends QueryRow>(queries: readonly T[], step: number, perStep: number, seed: number): T[] {
  if (queries.length === 0) throw new RangeError('no questions to sample from');
  const out: T[] = [];
  let position = (step - 1) * perStep;
  const orders = new Map<number, T[]>();
  while (out.length < perStep) {
    const epoch = Math.floor(position / queries.length);
    let order = orders.get(epoch);
    if (!order) {
      order = Rng.derive(seed, 'data-order', epoch).shuffle(queries);
      orders.set(epoch, order);
    }
    out.push(order[position % queries.length]!);
    position++;
  }
  return out;
}
