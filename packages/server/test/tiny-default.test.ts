/**
 * Acceptance: evaluating the bundled tiny model through the OpenAI-compatible server (engine: openai) on
 * loopback gives the same greedy accuracy as evaluating it in-process. Skipped when the model is absent.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig, selectBackend } from '@empo/core';
import { evaluateItems, evaluateItemsRemote, itemsFromQueries, readEvalQueries, summarize } from '@empo/evaluator';
import { Policy } from '@empo/policy';
import { OpenAIClient, PolicyServer } from '@empo/server';

const model = 'data/models/tiny-arith';
const present = existsSync(`${model}/config.json`) && existsSync('data/tasks/arith/eval.parquet');

describe.skipIf(!present)('the tiny default through empo serve', () => {
  it('has the same greedy accuracy remotely as in-process', async () => {
    const config = parseConfig({ evaluator: { limit: 40, num_samples: 0 } });
    await selectBackend('wasm');
    const policy = await Policy.load(model);
    const server = new PolicyServer(policy, { modelName: 'tiny-arith' });
    const { port } = await server.listen(0);
    try {
      const items = itemsFromQueries(readEvalQueries(config), config.sampler.prompt_template);
      const local = summarize(0, 'local', evaluateItems(policy, items, config.evaluator, config.seed));
      const client = OpenAIClient.fromConfig({ ...config.openai, base_url: `http://127.0.0.1:${port}/v1`, api_key_env: null });
      const remote = summarize(0, 'remote', await evaluateItemsRemote(client, items, config.evaluator, config.seed));
      process.stderr.write(`tiny-arith greedy accuracy on ${items.length} questions: in-process ${local.greedy_accuracy}, through empo serve ${remote.greedy_accuracy}\n`);
      expect(remote.questions).toBe(items.length);
      expect(remote.greedy_accuracy).toBe(local.greedy_accuracy);
      expect(local.greedy_accuracy).toBeGreaterThan(0);
    } finally {
      await server.close();
      policy.dispose();
    }
  });
});
if (!present) process.stderr.write(`skipping the tiny-default server test: ${model} is absent\n`);
