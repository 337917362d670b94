import { join } from 'node:path';
import { EmpoError, Rng, hashPath, log, parseBackendName, selectBackend, writeJsonAtomic } from '@empo/core';
import { parse, positiveInt } from '../args.ts';
import type { Command } from './types.ts';

const help = `Usage: empo sft --data FILE --out DIR [options]

Supervised fine-tuning: next-token loss on completion tokens only. Starts from --init DIR (a
model folder) or, without it, from a fresh Qwen2-layout model with a character tokenizer built
from the data. Writes a Hugging Face model folder to DIR (atomically) with sft_log.json.

  --data FILE          .parquet (columns prompt, completion) or .jsonl ({"prompt","completion"} per line)
  --out DIR            output model folder
  --init DIR           start from this model (default: a new model, see below)
  --hidden N           new model: hidden size (default 128)
  --layers N           new model: layers (default 4)
  --heads N            new model: attention heads (default 4)
  --kv-heads N         new model: key/value heads (default = heads)
  --intermediate N     new model: MLP size (default 4 x hidden)
  --steps N            optimizer steps (default 1000)
  --batch-size N       sequences per step (default 64)
  --lr X               peak learning rate (default 3e-3)
  --warmup N           warmup steps (default 50)
  --schedule S         cosine (default) or constant
  --weight-decay X     AdamW weight decay (default 0.01)
  --held-out N         pairs held out for the loss curve (default 256)
  --eval-every N       held-out evaluation interval (default 100)
  --seed N             seed (default 0)
  --backend NAME       wasm (default), cpu, webgpu, tensorflow, auto ('empo backends' lists them)
`;

function num(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const x = Number(text);
  if (!Number.isFinite(x) || x <= 0) throw new EmpoError(`${flag} must be a positive number, got '${text}'`);
  return x;
}

export const sft: Command = {
  summary: 'supervised fine-tuning on (prompt, completion) pairs; pretrains the bundled tiny model',
  async run(argv) {
    const { values } = parse('sft', argv, {
      data: { type: 'string' }, out: { type: 'string' }, init: { type: 'string' }, hidden: { type: 'string' },
      layers: { type: 'string' }, heads: { type: 'string' }, 'kv-heads': { type: 'string' }, intermediate: { type: 'string' },
      steps: { type: 'string' }, 'batch-size': { type: 'string' }, lr: { type: 'string' }, warmup: { type: 'string' },
      schedule: { type: 'string' }, 'weight-decay': { type: 'string' }, 'held-out': { type: 'string' },
      'eval-every': { type: 'string' }, seed: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    });
    if (values.help) return void process.stdout.write(help);
    if (!values.data) throw new EmpoError('--data is required; see empo sft --help');
    if (!values.out) throw new EmpoError('--out is required; see empo sft --help');
    const schedule = values.schedule ?? 'cosine';
    if (schedule !== 'cosine' && schedule !== 'constant') throw new EmpoError(`--schedule must be cosine or constant, got '${schedule}'`);
    const backend = parseBackendName('--backend', values.backend ?? 'wasm');
    const seed = positiveInt('--seed', values.seed, 0);
    const { readSftRows, runSftLoop, sftExample } = await import('@empo/trainer');
    const { CharTokenizer, Policy, tinyConfig } = await import('@empo/policy');
    const rows = readSftRows(values.data);
    // What the model was made from, by content (before --out, which may be --init, is written): `empo results` reuses an SFT run only for the same.
    const dataSha256 = hashPath(values.data);
    const initSha256 = values.init ? hashPath(values.init) : null;
    const heldOutCount = positiveInt('--held-out', values['held-out'], 256);
    if (rows.length <= heldOutCount) throw new EmpoError(`${values.data}: ${rows.length} pairs, need more than --held-out ${heldOutCount}`);
    await selectBackend(backend);
    let policy;
    if (values.init) {
      policy = await Policy.load(values.init);
    } else {
      const tokenizer = CharTokenizer.fromCorpus(rows.flatMap((r) => [r.prompt, r.completion]));
      const hidden = positiveInt('--hidden', values.hidden, 128);
      const heads = positiveInt('--heads', values.heads, 4);
      const config = tinyConfig({
        vocabSize: tokenizer.vocabSize, hiddenSize: hidden, numLayers: positiveInt('--layers', values.layers, 4), numHeads: heads,
        numKvHeads: positiveInt('--kv-heads', values['kv-heads'], heads), intermediateSize: positiveInt('--intermediate', values.intermediate, 4 * hidden),
        bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId, maxPositions: 512,
      });
      policy = Policy.init(config, tokenizer, seed);
    }
    log.info(`sft: ${policy.numParameters().toLocaleString()} parameters, ${rows.length - heldOutCount} training pairs, ${heldOutCount} held out`);
    const shuffled = Rng.derive(seed, 'sft-split').shuffle(rows).map((r) => sftExample(policy, r));
    const heldOut = shuffled.slice(0, heldOutCount);
    const train = shuffled.slice(heldOutCount);
    const options = {
      steps: positiveInt('--steps', values.steps, 1000), batchSize: positiveInt('--batch-size', values['batch-size'], 64),
      learningRate: num('--lr', values.lr, 3e-3), warmupSteps: positiveInt('--warmup', values.warmup, 50), schedule,
      weightDecay: values['weight-decay'] === undefined ? 0.01 : Number(values['weight-decay']),
      maxGradNorm: 1, seed, evalEvery: positiveInt('--eval-every', values['eval-every'], 100),
    } as const;
    const start = Date.now();
    const curve = await runSftLoop(policy, train, heldOut, options);
    await policy.save(values.out);
    writeJsonAtomic(join(values.out, 'sft_log.json'), {
      data: values.data, data_sha256: dataSha256, init: values.init ?? null, init_sha256: initSha256,
      parameters: policy.numParameters(), options, seconds: (Date.now() - start) / 1000, curve,
      command: `empo sft ${argv.join(' ')}`,
    });
    log.info(`sft: wrote ${values.out}; held-out loss ${curve[0]?.heldOut.toFixed(4)} -> ${curve.at(-1)?.heldOut.toFixed(4)}`);
    policy.dispose();
  },
};
