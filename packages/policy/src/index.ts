export { useBackend, type BackendName } from './backend.ts';
export {
  ConfigError,
  configToJson,
  eosIds,
  parseModelConfig,
  readModelConfig,
  tinyConfig,
  type RopeScaling,
  type ModelConfig,
  type ModelConfigInput,
  type TinyConfigOptions,
} from './config.ts';
export {
  cacheLength,
  decodeFromStoredWeights,
  forward,
  initWeights,
  invFreq,
  preferLazyLayers,
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
  SafetensorsReader,
  serializeSafetensors,
  tensorBytes,
  writeSafetensors,
  type HostTensor,
  type LazyTensor,
  type SafetensorsEntry,
  type SafetensorsDtype,
  type SafetensorsFile,
  type WriteOptions,
} from './safetensors.ts';
export {
  CharTokenizer,
  DEFAULT_SPECIALS,
  HFTokenizer,
  loadTokenizer,
  readTokenizerFiles,
  TokenizerError,
  type CharTokenizerOptions,
  type SpecialTokens,
  type TextTokenizer,
  type TokenizerFiles,
} from './tokenizer.ts';
export { applyChatTemplate, hasChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat.ts';
export { formatMemory, memoryReport, peakMemoryMB, resetPeakMemory, rssMB, type MemoryReport } from './memory.ts';
export { sampleToken, type Sample } from './sampling.ts';
export { directDecodeSteps, setDirectDecode } from './decode.ts';
export {
  generate,
  generateUncached,
  releasePreparedWeights,
  resumeGenerate,
  rowSeeds,
  type GenerateOptions,
  type GenerateResult,
  type GenerationModel,
  type HandoffControl,
  type RowHandoff,
} from './generate.ts';
export { completionLogprobs, fusedLogprobs, sequenceLogits, sequenceLogprobs, type LogprobOptions } from './logprobs.ts';
export { Policy, type PolicyOptions, type PromptOptions, type SaveOptions } from './policy.ts';
export { PolicyWorkers, defaultWorkerCount, splitRuns, startWorkers, type PolicyWorkersOptions, type TaskRecord } from './workers/pool.ts';
export type { TaskContext, TaskHandler, TaskModule, WorkerModel } from './workers/protocol.ts';
export type { HandoffMode } from './workers/split-generate.ts';
export { batchMatMul, batchMatMulNT, batchMatMulTN } from './kernels/matmul.ts';
export { readInto } from './kernels/copy.ts';
export { setWasmKernels, wasmKernelsActive, type KernelGroup } from './kernels/runtime.ts';
export { adamwStep, sumOfSquares, sumsOfSquares, type AdamWConstants } from './kernels/optimizer.ts';
