/**
 * Chat templates: the Jinja template of a tokenizer (tokenizer_config.json `chat_template`, or
 * chat_template.jinja) rendered with `@huggingface/jinja`, as transformers' `apply_chat_template` does.
 */
import { Template } from '@huggingface/jinja';
import { TokenizerError, type TextTokenizer } from './tokenizer.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface ChatTemplateOptions {
  /** Append the assistant turn's opening (`add_generation_prompt`); default true. */
  addGenerationPrompt?: boolean;
  /** More template variables (e.g. `enable_thinking: false` for Qwen3 templates). */
  variables?: Record<string, unknown>;
}

const compiled = new Map<string, Template>();

function template(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    t = new Template(source);
    if (compiled.size > 16) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/** Whether the tokenizer has a chat template. */
export function hasChatTemplate(tokenizer: TextTokenizer): boolean {
  return tokenizer.chatTemplate !== null;
}

/**
 * Render `messages` with the tokenizer's chat template. The template sees `messages`,
 * `add_generation_prompt`, `bos_token`, `eos_token`, `pad_token`, `unk_token` (token strings, '' when the
 * tokenizer has none) and `options.variables`; `raise_exception(msg)` is the library's. Throws TokenizerError when the tokenizer
 * has no template or the template fails. Tokenize the result with `tokenizer.encode` (no BOS added: templates
 * write `bos_token` themselves when the model wants one).
 */
export function applyChatTemplate(tokenizer: TextTokenizer, messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
  const source = tokenizer.chatTemplate;
  if (source === null) {
    throw new TokenizerError('the tokenizer has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja): use plain prompts');
  }
  const name = (id: number | null) => (id === null ? '' : (tokenizer.idToToken(id) ?? ''));
  let t: Template;
  try {
    t = template(source);
  } catch (e) {
    throw new TokenizerError(`chat_template: cannot parse the template: ${(e as Error).message}`);
  }
  try {
    return t.render({
      bos_token: name(tokenizer.bosId),
      eos_token: name(tokenizer.eosId),
      pad_token: name(tokenizer.padId),
      unk_token: name(tokenizer.unkId),
      ...options.variables,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
    });
  } catch (e) {
    if (e instanceof TokenizerError) throw e;
    throw new TokenizerError(`chat_template: rendering failed: ${(e as Error).message}`);
  }
}
