/**
 * `empo serve`: an OpenAI-compatible server (/v1/models, /v1/completions, /v1/chat/completions) over a local
 * Hugging Face model folder, so `engine: openai` clients (and any OpenAI SDK) can use it.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { EmpoError, log, parseBackendName, selectBackend } from '@empo/core';
import { parse } from '../args.ts';
import type { Command } from './types.ts';

const help = `Usage: empo serve --model DIR [--port N] [options]

Serves a model folder over the OpenAI API:
  GET  /v1/models
  POST /v1/completions        prompt, max_tokens, temperature, top_p, n, stop, seed, logprobs
  POST /v1/chat/completions   messages (chat template), max_tokens, temperature, top_p, n, stop, seed,
                              logprobs, top_logprobs
Bad requests get OpenAI-style errors (400). Requests run one at a time; bodies, n and max_tokens are bounded.

  --model DIR          Hugging Face model folder (config.json, model.safetensors, tokenizer.json, ...)
  --port N             port (default 8000; 0 = any free port, printed)
  --host ADDR          address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it, unauthenticated)
  --name NAME          model name served at /v1/models (default: the folder's name)
  --max-body BYTES     largest request body (default 1048576)
  --max-queue N        requests waiting at most; more get 429 (default 32)
  --max-n N            largest n (default 64)
  --backend NAME       wasm (default), cpu, webgpu, tensorflow, auto ('empo backends' lists them)
  -h, --help           this help
`;

function int(flag: string, text: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new EmpoError(`${flag} must be an integer in [${min}, ${max}], got '${text}'`);
  return n;
}

export const serve: Command = {
  summary: 'serve a model folder over the OpenAI API (/v1/completions, /v1/chat/completions, /v1/models)',
  async run(argv) {
    const { values } = parse('serve', argv, {
      model: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      name: { type: 'string' },
      'max-body': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-n': { type: 'string' },
      backend: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) return void process.stdout.write(help);
    if (!values.model) throw new EmpoError("--model is required; see 'empo serve --help'");
    if (!existsSync(values.model) || !statSync(values.model).isDirectory()) throw new EmpoError(`--model: ${values.model} is not a folder`);
    const port = int('--port', values.port, 8000, 0, 65535);
    const backend = parseBackendName('--backend', values.backend ?? 'wasm');
    const [{ Policy }, { PolicyServer }] = await Promise.all([import('@empo/policy'), import('@empo/server')]);
    await selectBackend(backend);
    const policy = await Policy.load(values.model);
    const server = new PolicyServer(policy, {
      modelName: values.name ?? basename(resolve(values.model)),
      maxBodyBytes: int('--max-body', values['max-body'], 1 << 20, 1024),
      maxQueue: int('--max-queue', values['max-queue'], 32, 0),
      maxN: int('--max-n', values['max-n'], 64, 1),
    });
    const host = values.host ?? '127.0.0.1';
    let address;
    try {
      address = await server.listen(port, host);
    } catch (error) {
      policy.dispose();
      throw new EmpoError(`cannot listen on ${host}:${port}: ${(error as Error).message}`);
    }
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    log.info(`serve: ${server.opts.modelName} at http://${shown}:${address.port}/v1 (Ctrl-C to stop)`);
    process.stdout.write(`http://${shown}:${address.port}/v1\n`);
    await new Promise<void>((done) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void server.close().then(() => {
          policy.dispose();
          done();
        });
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};
