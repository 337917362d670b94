/**
 * Every reference solution, graded against its own reference answer, must be judged correct.
 * Rates and failure classes are printed (and asserted: 100% where reached).
 */
import { describe, expect, it } from 'vitest';
import { answersEquivalent, extractBoxed, gradeResponse, normalizeMathAnswer, referenceAnswer, type GradeResult } from '../src/index.ts';
import { datasetPath, hasDataset, readDataset } from './datasets.ts';

interface Case {
  id: string;
  response: string;
  reference: string;
}

/** How each set yields (response, reference answer) pairs. */
const SETS: Record<string, { floor: number; cases: () => Case[]; note: string }> = {
  math500: {
    floor: 1,
    note: 'response = the solution (`answer`), reference = its last \\boxed{}',
    cases: () =>
      readDataset<{ answer: string }>('math500').map((r, i) => ({ id: `math500:${i + 1}`, response: r.answer, reference: referenceAnswer(r.answer) ?? '' })),
  },
  gsm8k: {
    floor: 1,
    note: 'response = the solution, reference = the number after ####',
    cases: () =>
      readDataset<{ answer: string }>('gsm8k').map((r, i) => ({ id: `gsm8k:${i + 1}`, response: r.answer, reference: referenceAnswer(r.answer) ?? '' })),
  },
  minerva_math: {
    floor: 1,
    note: 'response = `solution`, reference = its last \\boxed{}',
    cases: () =>
      readDataset<{ solution: string }>('minerva_math').map((r, i) => ({ id: `minerva_math:${i + 1}`, response: r.solution, reference: referenceAnswer(r.solution) ?? '' })),
  },
  aime24: {
    floor: 1,
    note: 'response = the AoPS `solution` (boxes such as \\textbf{(113) }, or none: last-number fallback), reference = `answer` (`025`)',
    cases: () =>
      readDataset<{ solution: string; answer: string | number }>('aime24').map((r, i) => ({ id: `aime24:${i + 1}`, response: r.solution, reference: String(r.answer) })),
  },
  amc23: {
    floor: 1,
    note: 'no solutions in the set: response = the answer as a model writes it, \\boxed{27}, reference = `answer` (27.0)',
    cases: () =>
      readDataset<{ answer: string | number }>('amc23').map((r, i) => {
        const value = Number(r.answer);
        const written = Number.isInteger(value) ? String(value) : String(r.answer);
        return { id: `amc23:${i + 1}`, response: `So the answer is $\\boxed{${written}}$.`, reference: String(r.answer) };
      }),
  },
};

function failureClass(c: Case, g: GradeResult): string {
  if (c.reference === '') return 'no reference answer found';
  if (g.extracted === null) return extractBoxed(c.response) === null ? 'no box, no marker, no number' : 'box unreadable';
  return 'extracted but judged different';
}

describe('reference solutions graded against their own reference answers', () => {
  for (const [name, set] of Object.entries(SETS)) {
    const present = hasDataset(name);
    it.skipIf(!present)(`${name}: ${set.note}`, () => {
      const cases = set.cases();
      const failures = new Map<string, string[]>();
      let correct = 0;
      for (const c of cases) {
        const g = gradeResponse(c.response, c.reference);
        if (g.correct) correct++;
        else {
          const cls = failureClass(c, g);
          failures.set(cls, [...(failures.get(cls) ?? []), `${c.id}: ref ${JSON.stringify(c.reference)} got ${JSON.stringify(g.extracted)}`]);
        }
      }
      const rate = correct / cases.length;
      console.log(`${name}: ${correct}/${cases.length} = ${(100 * rate).toFixed(2)}% judged correct`);
      for (const [cls, list] of failures) console.log(`  ${cls} (${list.length}): ${list.slice(0, 5).join('; ')}`);
      expect(cases.length).toBeGreaterThan(0);
      expect(rate).toBeGreaterThanOrEqual(set.floor);
    });
    if (!present) it.skip(`${name}: skipped, ${datasetPath(name)} is absent`, () => {});
  }

  it.skipIf(!hasDataset('math500') || !hasDataset('minerva_math'))(
    'the same answers found through the marker instead of the box ("Final Answer: The final answer is $X$")',
    () => {
      // Boxes unwrapped, "The answer is:" tail dropped, a Minerva-style final line appended.
      const unbox = (text: string): string => {
        let out = text;
        for (let k = 0; k < 50; k++) {
          const i = out.lastIndexOf('\\boxed{');
          if (i < 0) break;
          const inner = extractBoxed(out.slice(i));
          if (inner === null) break;
          out = out.slice(0, i) + inner + out.slice(i + '\\boxed{'.length + inner.length + 1);
        }
        return out;
      };
      const rows = [
        ...readDataset<{ answer: string }>('math500').map((r) => r.answer),
        ...readDataset<{ solution: string }>('minerva_math').map((r) => r.solution),
      ];
      let correct = 0;
      const failures: string[] = [];
      for (const solution of rows) {
        const ref = referenceAnswer(solution)!;
        let body = unbox(solution);
        const tail = body.lastIndexOf('The answer is:');
        if (tail >= 0) body = body.slice(0, tail);
        const g = gradeResponse(`${body}\nFinal Answer: The final answer is $${ref}$. I hope it is correct.`, ref);
        if (g.correct) correct++;
        else failures.push(`ref ${JSON.stringify(ref)} got ${JSON.stringify(g.extracted)}`);
      }
      console.log(`marker variant: ${correct}/${rows.length}; failures: ${failures.join('; ')}`);
      // One minerva reference itself contains "$ $" (`x_{0} \cos (\omega t)+$ $\dot{x}_{0} ...`).
      expect(failures.length).toBeLessThanOrEqual(1);
    },
  );

  it.skipIf(!hasDataset('math500') || !hasDataset('minerva_math'))(
    'different reference answers are not judged equivalent (all pairs of math500 + minerva answers)',
    () => {
      const answers = [
        ...new Set([
          ...readDataset<{ answer: string }>('math500').map((r) => referenceAnswer(r.answer)!),
          ...readDataset<{ solution: string }>('minerva_math').map((r) => referenceAnswer(r.solution)!),
        ]),
      ];
      const equalPairs: string[] = [];
      let pairs = 0;
      for (let i = 0; i < answers.length; i++) {
        for (let j = i + 1; j < answers.length; j++) {
          pairs++;
          const [a, b] = [answers[i]!, answers[j]!];
          if (answersEquivalent(a, b) && normalizeMathAnswer(a) !== normalizeMathAnswer(b)) equalPairs.push(`${a} = ${b}`);
        }
      }
      console.log(`cross-check: ${pairs} pairs, ${equalPairs.length} equivalent with different normal forms: ${equalPairs.join('; ')}`);
      // Each of these is a true equivalence (1.5 = 3/2, 0.33 = 33/100, "1,-2" = "-2,1").
      expect(equalPairs.sort()).toEqual(
        ['1,-2 = -2,1', '\\dfrac{33}{100} = 0.33', '\\frac65 = 1.2', '\\frac{1}{2} = 0.5', '\\frac{3}{2} = 1.5', '\\frac{7}{4} = 1.75'].sort(),
      );
    },
  );
});
