import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
await tf.setBackend('wasm'); await tf.ready();
// scatterNd duplicates
const s = tf.scatterND(tf.tensor2d([[1],[1],[3]], [3,1], 'int32'), tf.tensor2d([[1,2],[3,4],[5,6]]), [5,2]);
console.log('scatter dup', s.arraySync());
const time = (name: string, f: () => tf.Tensor, n = 5) => {
  f().dispose();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) { const r = f(); r.dataSync(); r.dispose(); }
  console.log(name, ((performance.now() - t0) / n).toFixed(2), 'ms');
};
for (const [M, K, N] of [[64, 128, 512], [64, 128, 128], [1024, 128, 512], [8, 896, 4864], [64, 896, 896], [8, 896, 151936 / 8]] as const) {
  const a = tf.randomNormal([M, K]); const b = tf.randomNormal([K, N]); const bt = tf.transpose(b);
  time(`M${M} K${K} N${N} plain`, () => tf.matMul(a, b));
  time(`M${M} K${K} N${N} transB`, () => tf.matMul(a, bt, false, true));
  time(`M${M} K${K} N${N} transpose+plain`, () => tf.tidy(() => tf.matMul(a, tf.transpose(bt))));
}
