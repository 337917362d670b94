/**
 * The summary of a bench/gpu.sh run, as Markdown ready for BENCHMARKS.md: the machine, the adapter, the tiny
 * default's EMPO step on webgpu vs wasm, policy throughput by batch size, and the larger model's update and sampling.
 *   npx tsx bench/gpu-summary.ts OUTDIR [gpu|software]
 * Missing files (a stage that failed or was skipped) are left out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, mode = 'gpu'] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: npx tsx bench/gpu-summary.ts OUTDIR [gpu|software]\n');
  process.exit(2);
}

function read<T>(name: string): T | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** bench/step.ts --json: one run at the top level, or (with worker counts) a list of runs. */
interface StepFile {
  backend: string;
  model: string;
  steps?: Record<string, number>[];
  median?: Record<string, number>;
  runs?: { workers: number; steps: Record<string, number>[]; median: Record<string, number> }[];
  peak_rss_mb?: number;
}
interface Step { steps: Record<string, number>[]; median: Record<string, number>; workers?: number; peak_rss_mb?: number }

function readStep(name: string): Step | undefined {
  const file = read<StepFile>(name);
  if (!file) return undefined;
  const run = file.runs?.[0] ?? { steps: file.steps ?? [], median: file.median ?? {}, workers: undefined };
  return { ...run, peak_rss_mb: file.peak_rss_mb };
}
interface PolicyRun { backend: string; rows: { name: string; batch: number; tokens_per_s: number; seconds: number }[] }
interface Adapter { device?: string; description?: string; vendor?: string; architecture?: string; dawnBackend?: string; none?: string }
interface Backends { webgpu: { gpu: Adapter; software: Adapter }; checks: { backend: string; ok: boolean; maxAbsDiff?: number }[] }

const f = (x: number | undefined, digits = 2) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));
const n = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : Math.round(x).toLocaleString('en-US'));
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(2)}x` : '–');

const lines: string[] = [];
const machine = existsSync(join(dir, 'machine.txt')) ? readFileSync(join(dir, 'machine.txt'), 'utf8').trim().split('\n') : [];
const backends = read<Backends>('backends.json');
const adapter = backends?.webgpu[mode === 'software' ? 'software' : 'gpu'];
const adapterName = adapter && !adapter.none ? [adapter.device, adapter.description].filter(Boolean).join(', ') : 'none';
const check = backends?.checks.find((c) => c.backend === 'webgpu');

lines.push(`### bench/gpu.sh${mode === 'software' ? ' --software' : ''}: ${adapterName}`);
lines.push('');
for (const m of machine) lines.push(`- ${m}`);
if (adapter && !adapter.none) {
  lines.push(`- adapter: ${adapterName} (vendor ${adapter.vendor || '–'}, architecture ${adapter.architecture || '–'}, Dawn ${adapter.dawnBackend})` +
    (check ? `; empo backends --check: ${check.ok ? 'ok' : 'FAILED'}, max |diff| vs cpu ${check.maxAbsDiff?.toExponential(1)}` : ''));
}
lines.push('');

const gpu = readStep('step-webgpu.json');
const wasm = readStep('step-wasm.json');
if (gpu || wasm) {
  const steps = (s?: Step) => (s ? `${s.steps.length}` : '–');
  lines.push(`Tiny default (data/models/tiny-arith), one EMPO step: median of ${steps(gpu ?? wasm)} steps (the first includes shader compilation on webgpu).`);
  lines.push('');
  const threads = wasm?.workers && wasm.workers > 1 ? ` (${wasm.workers} workers)` : '';
  lines.push(`| | webgpu (${mode}) | wasm${threads} | webgpu / wasm |`);
  lines.push('| --- | ---: | ---: | ---: |');
  const row = (label: string, key: string, fmt: (x?: number) => string, inverse = false) =>
    lines.push(`| ${label} | ${fmt(gpu?.median[key])} | ${fmt(wasm?.median[key])} | ${inverse ? ratio(wasm?.median[key], gpu?.median[key]) : ratio(gpu?.median[key], wasm?.median[key])} |`);
  row('sample (128 sequences), s', 'sample_s', (x) => f(x));
  row('sampling, completion tokens/s', 'sample_tokens_per_s', n);
  row('train (forward + backward + AdamW), s', 'train_s', (x) => f(x));
  row('training, tokens/s', 'train_tokens_per_s', n);
  row('full step, s', 'total_s', (x) => f(x));
  lines.push(`| peak RSS, MB | ${n(gpu?.peak_rss_mb)} | ${n(wasm?.peak_rss_mb)} | |`);
  if (gpu?.steps.length) lines.push('', `webgpu step times: ${gpu.steps.map((s) => f(s.total_s)).join(', ')} s; wasm: ${wasm?.steps.map((s) => f(s.total_s)).join(', ') ?? '–'} s.`);
  lines.push('');
}

const pg = read<PolicyRun>('policy-webgpu.json');
const pw = read<PolicyRun>('policy-wasm.json');
if (pg || pw) {
  lines.push('Policy throughput (bench/policy.ts --repeats 2: random weights, the tiny default\'s shape), tokens/s:');
  lines.push('');
  lines.push(`| measurement | webgpu (${mode}) | wasm | webgpu / wasm |`);
  lines.push('| --- | ---: | ---: | ---: |');
  for (const r of (pw ?? pg)!.rows) {
    const a = pg?.rows.find((x) => x.name === r.name)?.tokens_per_s;
    const b = pw?.rows.find((x) => x.name === r.name)?.tokens_per_s;
    lines.push(`| ${r.name} | ${n(a)} | ${n(b)} | ${ratio(a, b)} |`);
  }
  lines.push('');
}

interface PolicyFile extends PolicyRun { model: string; parameters: number; rows: (PolicyRun['rows'][0] & { tokens: number })[] }
const big = read<PolicyFile>('policy-big-webgpu.json');
if (big) {
  lines.push(`Larger model (${big.model}, ${big.parameters.toLocaleString('en-US')} parameters) on webgpu (bench/policy.ts --repeats 2):`);
  lines.push('');
  lines.push('| measurement | batch | tokens | seconds | tokens/s |');
  lines.push('| --- | ---: | ---: | ---: | ---: |');
  for (const r of big.rows) lines.push(`| ${r.name} | ${r.batch} | ${r.tokens} | ${f(r.seconds, 3)} | ${n(r.tokens_per_s)} |`);
  lines.push('');
}
process.stdout.write(lines.join('\n') + '\n');
