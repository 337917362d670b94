import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { EmpoError, type ClustererConfig } from '@empo/core';
import { LocalModelJudge, OpenAICompatibleJudge, type Judge, type YesNo } from '@empo/grader';
import { Policy } from '@empo/policy';

/**
 * P(Yes) and P(No) of a local model's next token after the prompt: the first token of
 * "Yes" and of "No" in its tokenizer.
 */
export function localYesNoScorer(policy: Policy): (prompt: string) => YesNo {
  const yes = policy.tokenizer.encode('Yes')[0];
  const no = policy.tokenizer.encode('No')[0];
  if (yes === undefined || no === undefined || yes === no) {
    throw new EmpoError('clusterer.judge: the local verifier\'s tokenizer cannot tell "Yes" from "No"');
  }
  return (prompt) => {
    const ids = policy.encodePrompt(prompt);
    const probs = tf.tidy(() => {
      const logits = policy.logits([ids]); // [1, T, V]
      const last = logits.slice([0, ids.length - 1, 0], [1, 1, -1]).reshape([-1]);
      return tf.softmax(last).dataSync();
    });
    return { pYes: probs[yes]!, pNo: probs[no]! };
  };
}

/** The verifier judge the config asks for (null: none). The caller disposes `policy` when one was loaded. */
export async function makeJudge(config: ClustererConfig): Promise<{ judge: Judge; policy?: Policy } | null> {
  const j = config.judge;
  if (j === null) return null;
  if (j.type === 'openai') {
    if (j.api_key_env !== null && !process.env[j.api_key_env]) {
      throw new EmpoError(`clusterer.judge.api_key_env: environment variable ${j.api_key_env} is not set`);
    }
    return {
      judge: new OpenAICompatibleJudge({
        baseUrl: j.base_url, model: j.model, apiKeyEnv: j.api_key_env ?? undefined, endpoint: j.endpoint,
        timeoutMs: j.timeout_s * 1000, bidirectional: j.bidirectional,
      }),
    };
  }
  const policy = await Policy.load(resolve(j.model));
  return { judge: new LocalModelJudge(localYesNoScorer(policy), { bidirectional: j.bidirectional }), policy };
}
