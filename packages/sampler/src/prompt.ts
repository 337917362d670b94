/** Apply the prompt template: `{question}` is replaced by the question text. */
export function renderPrompt(template: string, question: string): string {
  return template.split('{question}').join(question);
}
