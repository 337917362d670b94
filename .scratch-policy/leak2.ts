import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
await tf.setBackend('wasm');
const z = tf.randomNormal([4, 5]) as tf.Tensor2D;
for (const inner of [true, false, true, false]) {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const f = tf.customGrad((zIn, save) => {
      (save as tf.GradSaveFunc)([zIn as tf.Tensor]);
      const v = () => tf.sum(zIn as tf.Tensor, -1);
      return { value: inner ? tf.tidy(v) : v(), gradFunc: (dy: tf.Tensor) => tf.mul(dy, 1) };
    });
    return f(z);
  });
  console.log('inner tidy', inner, tf.memory().numTensors - before);
}
