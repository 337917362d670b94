import { CharTokenizer, Policy, tinyConfig } from '@empo/policy';

/** A very small random policy over a character vocabulary (for gradient and update tests). */
export function tinyPolicy(seed = 1, hiddenSize = 16): Policy {
  const tokenizer = CharTokenizer.fromChars('0123456789+-*=ab? \\boxed{}\n');
  const config = tinyConfig({
    vocabSize: tokenizer.vocabSize, hiddenSize, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 2 * hiddenSize,
    bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId, maxPositions: 64,
  });
  return Policy.init(config, tokenizer, seed);
}
