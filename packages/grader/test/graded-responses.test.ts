import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { clusterAnswers, extractAnswer, gradeResponse, guardAnswers } from '../src/index.ts';

// <repo>/../shared/datasets, resolved from this file (<repo>/packages/grader/test).
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const datasetDir = join(repoRoot, '..', 'shared', 'datasets', 'graded_responses');
const present = existsSync(datasetDir);

/** Agreement floor reached now (measured 450/450 = 100%); a later issue targets >= 98% on more sets. */
const AGREEMENT_FLOOR = 0.98;

interface GradedRow {
  question: string;
  ground_truth: string;
  outputs: { response: string; label: boolean | string }[];
}

/** Labels are booleans in the files (README says "True"/"False"); "[invalid]" counts as not correct. */
function isCorrectLabel(label: boolean | string): boolean {
  return label === true || label === 'True' || label === 'true';
}

describe.skipIf(!present)('graded responses (../shared/datasets/graded_responses)', () => {
  it('gradeResponse agrees with the human/grader labels', () => {
    let total = 0;
    let agree = 0;
    const disagreements: string[] = [];
    const files = readdirSync(datasetDir).filter((f) => f.endsWith('.jsonl')).sort();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const lines = readFileSync(join(datasetDir, file), 'utf8').split('\n').filter((l) => l.trim().length > 0);
      for (const line of lines) {
        const row = JSON.parse(line) as GradedRow;
        for (const out of row.outputs) {
          // The files mark step boundaries with the tag "ки" (Math-Shepherd format), sometimes
          // without a newline; it is a dataset artifact, so it is turned back into a line break.
          const response = out.response.replaceAll('ки', '\n');
          const { extracted, correct } = gradeResponse(response, row.ground_truth);
          total++;
          if (correct === isCorrectLabel(out.label)) agree++;
          else disagreements.push(`${file}: ref ${JSON.stringify(row.ground_truth)} got ${JSON.stringify(extracted)} label ${String(out.label)}`);
        }
      }
    }
    const rate = agree / total;
    console.log(`graded responses: agreement ${agree}/${total} = ${(100 * rate).toFixed(2)}%`);
    if (disagreements.length > 0) console.log(disagreements.slice(0, 20).join('\n'));
    expect(total).toBe(450);
    expect(rate).toBeGreaterThanOrEqual(AGREEMENT_FLOOR);
  });

  it('clustering puts the responses labelled correct together, and no wrong one with them', () => {
    let questions = 0;
    let consistent = 0;
    const problems: string[] = [];
    for (const file of readdirSync(datasetDir).filter((f) => f.endsWith('.jsonl')).sort()) {
      for (const line of readFileSync(join(datasetDir, file), 'utf8').split('\n').filter((l) => l.trim())) {
        const row = JSON.parse(line) as GradedRow;
        const answers = guardAnswers(row.outputs.map((o) => extractAnswer(o.response.replaceAll('ки', '\n'))));
        const { clusterIds } = clusterAnswers(answers);
        const correctClusters = new Set(row.outputs.flatMap((o, i) => (isCorrectLabel(o.label) ? [clusterIds[i]!] : [])));
        const mixed = row.outputs.some((o, i) => !isCorrectLabel(o.label) && correctClusters.has(clusterIds[i]!));
        questions++;
        if (correctClusters.size <= 1 && !mixed) consistent++;
        else problems.push(`${file}: ${JSON.stringify(row.ground_truth)} clusters ${JSON.stringify(clusterIds)}`);
      }
    }
    console.log(`graded responses: ${consistent}/${questions} questions with label-consistent clusters`);
    if (problems.length > 0) console.log(problems.join('\n'));
    expect(consistent).toBe(questions);
  });
});

if (!present) {
  describe('graded responses', () => {
    it.skip(`skipped: ${datasetDir} is absent`, () => {});
  });
}
