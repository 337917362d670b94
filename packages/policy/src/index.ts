export { useBackend, type BackendName } from './backend.ts';
export {
  ConfigError,
  configToJson,
  eosIds,
  parseModelConfig,
  readModelConfig,
  tinyConfig,
  type ModelConfig,
  type ModelConfigInput,
  type TinyConfigOptions,
} from './config.ts';
export {
  cacheLength,
  forward,
  initWeights,
  prepareWeights,
  weightSpecs,
  type ForwardInput,
  type ForwardOptions,
  type KVCache,
  type LayerWeights,
  type NewKV,
  type WeightSpec,
  type Weights,
} from './model.ts';
export {
  f32BitsToBf16,
  f32BitsToF16,
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  writeSafetensors,
  type HostTensor,
  type SafetensorsDtype,
  type SafetensorsFile,
  type WriteOptions,
} from './safetensors.ts';
export { CharTokenizer, DEFAULT_SPECIALS, loadTokenizer, TokenizerError, type SpecialTokens, type TextTokenizer } from './tokenizer.ts';
export { sampleToken, type Sample } from './sampling.ts';
export { generate, generateUncached, type GenerateOptions, type GenerateResult, type GenerationModel } from './generate.ts';
export { completionLogprobs, sequenceLogits, sequenceLogprobs, type LogprobOptions } from './logprobs.ts';
export { Policy, type PolicyOptions, type SaveOptions } from './policy.ts';
