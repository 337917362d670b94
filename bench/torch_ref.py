"""
PyTorch reference for the tiny EMPO step (BENCHMARKS.md compares against it). Not a test dependency.

The same shapes as the TypeScript benchmarks: the tiny default (Qwen2 layout: hidden 128, 4 layers, 4 heads,
head dim 32, MLP 512, q/k/v biases, tied embeddings, RMSNorm, RoPE, SwiGLU, vocabulary 30), random weights.
  train:  one optimizer step on a batch of 32 sequences x 64 tokens: forward, log-softmax of the next token,
          backward, AdamW (tokens/s counts the 32 x 64 tokens);
  sample: 16 prompts x 8 samples (128 rows) of 17 prompt tokens, 48 new tokens with a KV cache, temperature 1,
          sampling on the CPU each step, EOS ignored (tokens/s counts new tokens).
Median of --repeats runs after a warm-up, on --threads threads (default 1).

  python3 bench/torch_ref.py [--threads N] [--repeats N] [--json]
"""
import argparse
import json
import math
import os
import re
import statistics
import sys
import time

if __name__ == '__main__':
    # OpenBLAS (Debian's torch calls it for matmuls) starts its own threads: pin them before torch loads.
    _threads = sys.argv[sys.argv.index('--threads') + 1] if '--threads' in sys.argv else '1'
    for _var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[_var] = _threads

import torch
import torch.nn.functional as F

D, LAYERS, HEADS, HD, MLP, VOCAB = 128, 4, 4, 32, 512, 30


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.Parameter(torch.ones(D))
        self.ln2 = torch.nn.Parameter(torch.ones(D))
        self.q = torch.nn.Linear(D, HEADS * HD)
        self.k = torch.nn.Linear(D, HEADS * HD)
        self.v = torch.nn.Linear(D, HEADS * HD)
        self.o = torch.nn.Linear(HEADS * HD, D, bias=False)
        self.gate = torch.nn.Linear(D, MLP, bias=False)
        self.up = torch.nn.Linear(D, MLP, bias=False)
        self.down = torch.nn.Linear(MLP, D, bias=False)


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(positions):
    inv = 1.0 / (10000 ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))
    ang = positions[..., None].float() * inv  # [B, T, hd/2]
    ang = torch.cat([ang, ang], -1)
    return ang.cos()[:, None], ang.sin()[:, None]  # [B, 1, T, hd]


def rotate_half(x):
    x1, x2 = x.chunk(2, -1)
    return torch.cat([-x2, x1], -1)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, D)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(LAYERS))
        self.norm = torch.nn.Parameter(torch.ones(D))
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, ids, positions, cache=None):
        """ids [B, T]; cache: per layer (k, v) [B, H, S, hd] or None. Returns logits [B, T, V] and the new cache."""
        B, T = ids.shape
        x = self.embed(ids)
        cos, sin = rope_tables(positions)
        S = 0 if cache is None else cache[0][0].shape[2]
        mask = torch.full((T, S + T), float('-inf')).triu(S + 1)
        new = []
        for i, blk in enumerate(self.blocks):
            h = rms(x, blk.ln1)
            q = blk.q(h).view(B, T, HEADS, HD).transpose(1, 2)
            k = blk.k(h).view(B, T, HEADS, HD).transpose(1, 2)
            v = blk.v(h).view(B, T, HEADS, HD).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                k = torch.cat([cache[i][0], k], 2)
                v = torch.cat([cache[i][1], v], 2)
            new.append((k, v))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(HD) + mask
            y = att.softmax(-1) @ v
            x = x + blk.o(y.transpose(1, 2).reshape(B, T, D))
            h = rms(x, blk.ln2)
            x = x + blk.down(F.silu(blk.gate(h)) * blk.up(h))
        logits = rms(x, self.norm) @ self.embed.weight.t()
        return logits, new


def median_time(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--json', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)

    B, T = 32, 64
    ids = torch.randint(3, VOCAB, (B, T))
    pos = torch.arange(T)[None].expand(B, T)

    def train_step():
        logits, _ = model(ids[:, :-1], pos[:, :-1])
        logp = logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        loss = -logp.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    train_s = median_time(train_step, args.repeats)

    Q, G, P, NEW = 16, 8, 17, 48
    prompts = torch.randint(3, VOCAB, (Q, P))

    @torch.inference_mode()
    def sample():
        gen = torch.Generator().manual_seed(1)
        logits, cache = model(prompts, torch.arange(P)[None].expand(Q, P))  # prefill each prompt once
        rep = torch.arange(Q).repeat_interleave(G)
        cache = [(k[rep], v[rep]) for k, v in cache]
        last = logits[rep, -1]
        for t in range(NEW):
            nxt = torch.multinomial(last.softmax(-1), 1, generator=gen)  # [Q*G, 1]
            if t == NEW - 1:
                break
            logits, cache = model(nxt, torch.full((Q * G, 1), P + t), cache)
            last = logits[:, -1]

    sample_s = median_time(sample, args.repeats)
    out = {
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'blas': blas_in_use(),
        'cpu_capability': getattr(getattr(torch.backends, 'cpu', None), 'get_cpu_capability', lambda: 'unknown')(),
        'train': {'batch': B, 'tokens': B * T, 'seconds': train_s, 'tokens_per_s': B * T / train_s},
        'sample': {'rows': Q * G, 'prompt_tokens': P, 'new_tokens': NEW, 'seconds': sample_s, 'tokens_per_s': Q * G * NEW / sample_s},
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"torch {out['torch']} ({out['blas']}), {out['threads']} thread(s)")
        print(f"train  (32 x 64 tokens, fwd + bwd + AdamW): {train_s:.3f} s, {out['train']['tokens_per_s']:.0f} tokens/s")
        print(f"sample (16 x 8 rows, 48 new tokens, KV cache): {sample_s:.3f} s, {out['sample']['tokens_per_s']:.0f} tokens/s")


def blas_in_use():
    """The BLAS this torch build calls: the system's libblas.so.3 alternative (Debian's python3-torch links it,
    e.g. OpenBLAS), or the one the build names (pip wheels: MKL, linked in)."""
    info = re.search(r'BLAS_INFO=([^,\s]+)', torch.__config__.show())
    name = info.group(1) if info else 'unknown'
    system = '/etc/alternatives/libblas.so.3-x86_64-linux-gnu'
    if name != 'mkl' and os.path.exists(system):
        return os.path.realpath(system)
    return name


if __name__ == '__main__':
    main()
