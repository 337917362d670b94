#!/usr/bin/env bash
# GPU figures for BENCHMARKS.md ("GPU backend (bench/gpu.sh)"), in one go, from the repository root after
# `npm ci`:
#   1. the machine, and the WebGPU adapter Dawn finds (`empo backends --check`); when it finds no GPU adapter,
#      exactly why (device nodes, libvulkan, the NVIDIA Vulkan ICD, Dawn's own messages) and exit 3;
#   2. the tiny default's EMPO step (bench/step.ts: sampling tokens/s, training step time) on webgpu and on wasm;
#   3. policy throughput by batch size (bench/policy.ts, the tiny default's shape) on webgpu and on wasm;
#   4. a larger model (random weights, d=1024, 16 layers, 16 heads, 4 KV heads, MLP 4096, 243M parameters) on
#      webgpu: one trainer update (policyUpdate: loss, backward, AdamW) of 32 sequences, and sampling throughput.
# Usage: bash bench/gpu.sh [--software] [--quick] [--steps N]
#   --software   measure Mesa's software adapter instead of a GPU (no GPU needed; skips stages 3 and 4,
#                which take far too long on it)
#   --quick      skip bench/policy.ts (stage 3)
#   --steps N    EMPO steps per bench/step.ts run (default 3; the median is reported)
# Output: a summary on stdout, and every JSON and log file in $GPU_BENCH_OUT (default bench/out/gpu-<date>);
# when $OUT is set (a lent GPU machine), also $OUT/summary.txt and $OUT/gpu-bench.tar.gz (all files).
# Each stage has a time limit (STAGE_TIMEOUT, default 300 s).
# A machine without network, Node.js or npm: run `bash bench/gpu-carry.sh` where they are, and carry
# bench/.gpu-carry along: this script then unpacks Node.js, node_modules and the Vulkan/EGL loaders from it.
# If only libvulkan.so.1 is missing, a copy of it in bench/.gpu-libs/ is enough (added to LD_LIBRARY_PATH).
set -uo pipefail
{ # (one compound command: bash reads it whole, so editing this file during a run cannot break the run)
cd "$(dirname "$0")/.."

MODE=gpu
QUICK=0
STEPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --software) MODE=software ;;
    --quick) QUICK=1 ;;
    --steps) STEPS="$2"; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench/gpu.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

OUTDIR="${GPU_BENCH_OUT:-bench/out/gpu-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
STAGE_TIMEOUT="${STAGE_TIMEOUT:-300}"
export NX_DAEMON=false EMPO_WEBGPU_ADAPTER="$MODE"
[ -d bench/.gpu-libs ] && export LD_LIBRARY_PATH="$PWD/bench/.gpu-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say() { printf '%s\n' "$*" | tee -a "$OUTDIR/summary.txt"; }
: > "$OUTDIR/summary.txt"
# On a lent machine: hand back the summary and one archive of every file ($OUT returns only a few files).
finish() {
  if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
    cp "$OUTDIR/summary.txt" "$OUT/summary.txt" 2>/dev/null
    tar -czf "$OUT/gpu-bench.tar.gz" -C "$OUTDIR" . 2>/dev/null
  fi
}
trap finish EXIT

# What bench/gpu-carry.sh packed, for a machine without network, Node.js or npm.
CARRY=bench/.gpu-carry
if [ -d "$CARRY" ]; then
  if ! command -v node >/dev/null 2>&1 && [ -f "$CARRY/node.xz" ]; then
    mkdir -p /tmp/empo-node/bin && xz -dc "$CARRY/node.xz" > /tmp/empo-node/bin/node 2>/dev/null \
      || python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$CARRY/node.xz" /tmp/empo-node/bin/node
    chmod +x /tmp/empo-node/bin/node && export PATH="/tmp/empo-node/bin:$PATH"
    say "node: unpacked from $CARRY ($(node --version))"
  fi
  if [ ! -d node_modules/webgpu ] && [ -f "$CARRY/node_modules.tar.xz" ]; then
    tar -xJf "$CARRY/node_modules.tar.xz" 2>/dev/null || python3 -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall(".")' "$CARRY/node_modules.tar.xz"
    say "node_modules: unpacked from $CARRY"
  fi
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' && ls "$CARRY"/debs/*.deb >/dev/null 2>&1; then
    for f in "$CARRY"/debs/*.deb; do dpkg -x "$f" /; done; ldconfig
    say "Vulkan/EGL loaders: unpacked from $CARRY/debs"
  fi
fi
EMPO="node packages/cli/bin/empo.mjs"
TSX="node --import tsx"

if ! command -v node >/dev/null 2>&1; then say "node not found (run bench/gpu-carry.sh on a machine that has it, and carry bench/.gpu-carry)"; exit 2; fi
if [ ! -d node_modules/webgpu ] || [ ! -d node_modules/@tensorflow/tfjs-backend-webgpu ]; then
  say "node_modules lacks webgpu or @tensorflow/tfjs-backend-webgpu: run npm ci first (or carry bench/.gpu-carry)"; exit 2
fi

# ---- 1. machine and adapter --------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //'); $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo 2>/dev/null)"
  echo "node: $(node --version); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -4 | tr '\n' ';')"
  else
    echo "nvidia-smi: not found"
  fi
  echo "NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-<unset>} NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES:-<unset>}"
  echo "device nodes: $(ls -d /dev/nvidia* /dev/dri /dev/dxg 2>/dev/null | tr '\n' ' ')"
  echo "libraries: $( (ldconfig -p 2>/dev/null | grep -oE '(libvulkan\.so\.1|libGLX_nvidia\.so\.0|libEGL_nvidia\.so\.0|libnvidia-gpucomp\.so[^ ]*|libEGL\.so\.1|libEGL_mesa\.so\.0) ' | sort -u | tr '\n' ' ') || true)"
  echo "Vulkan ICD files: $(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json /usr/local/nvidia/share/vulkan/icd.d/*.json 2>/dev/null | tr '\n' ' ')"
} > "$OUTDIR/machine.txt" 2>&1
cat "$OUTDIR/machine.txt" | tee -a "$OUTDIR/summary.txt"

if [ "$MODE" = gpu ]; then
  # Dawn reaches an NVIDIA GPU through Vulkan: the loader (libvulkan.so.1) and the driver's ICD manifest.
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' && [ ! -e bench/.gpu-libs/libvulkan.so.1 ] && command -v apt-get >/dev/null 2>&1; then
    say "libvulkan.so.1 missing: trying apt-get install libvulkan1 (60 s limit)"
    (timeout 60 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y -qq --no-install-recommends libvulkan1) \
      >"$OUTDIR/apt.log" 2>&1 || say "  apt-get failed (no mirror reachable?): see $OUTDIR/apt.log"
  fi
  if ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1 && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    # Containers mount the driver under /usr/local/nvidia, where the loaders do not look.
    if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
      export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VK_ICD_FILENAMES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
      [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
      say "using the driver's Vulkan manifest $VK_DRIVER_FILES"
    elif ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia\.so\.0 '; then
      # The driver's Vulkan implementation is in libGLX_nvidia.so.0; only the manifest is missing.
      printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3"}}\n' > "$OUTDIR/nvidia_icd.json"
      export VK_DRIVER_FILES="$OUTDIR/nvidia_icd.json" VK_ICD_FILENAMES="$OUTDIR/nvidia_icd.json"
      say "no nvidia_icd.json installed, but libGLX_nvidia.so.0 is: using a generated manifest ($VK_DRIVER_FILES)"
    fi
  fi
fi

say ""
say "== 1. adapter (empo backends --check, EMPO_WEBGPU_ADAPTER=$MODE)"
timeout "$STAGE_TIMEOUT" $EMPO backends --check --json >"$OUTDIR/backends.json" 2>"$OUTDIR/backends.stderr"
rc=$?
ADAPTER_OK=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const a = r.webgpu[process.argv[2]];
  const check = r.checks.find((c) => c.backend === "webgpu");
  console.log(a && !a.none && check && check.ok ? "yes" : "no");
' "$OUTDIR/backends.json" "$MODE" 2>/dev/null || echo no)
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const k of ["gpu", "software"]) { const a = r.webgpu[k]; console.log(`${k} adapter: ${a.none ? "none: " + a.none : [a.device, a.description, a.vendor, a.architecture, "Dawn " + a.dawnBackend].filter(Boolean).join(" | ")}`); }
  for (const p of r.webgpu.problems) console.log(`problem: ${p}`);
  console.log(`auto would choose: ${r.auto}`);
  for (const c of r.checks) console.log(`check ${c.backend}: ${c.ok ? "ok" : "FAILED"} ${c.maxAbsDiff !== undefined ? "max|diff| " + c.maxAbsDiff.toExponential(1) + ", " + c.ms.toFixed(1) + " ms" : c.error || ""}`);
' "$OUTDIR/backends.json" 2>&1 | tee -a "$OUTDIR/summary.txt"

if [ "$ADAPTER_OK" != yes ]; then
  say ""
  say "NO USABLE $MODE ADAPTER (empo backends exit code $rc). Why, as far as this machine shows:"
  [ -s "$OUTDIR/backends.json" ] || { tail -5 "$OUTDIR/backends.stderr" | sed 's/^/  empo backends: /' | tee -a "$OUTDIR/summary.txt"; }
  { grep -v '^\s*$' "$OUTDIR/backends.stderr" | grep -v 'artificially reduced' | grep -iE 'vulkan|egl|icd|adapter|driver|nvidia|error|warning' | head -20 | sed 's/^/  stderr: /'; } | tee -a "$OUTDIR/summary.txt"
  for f in /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json ${VK_DRIVER_FILES:-}; do
    [ -f "$f" ] && say "  $f: $(tr -d '\n ' < "$f")"
  done
  command -v vulkaninfo >/dev/null 2>&1 && timeout 30 vulkaninfo --summary >"$OUTDIR/vulkaninfo.txt" 2>&1 && say "  vulkaninfo --summary: $OUTDIR/vulkaninfo.txt"
  say "See docs/GPU.md (NVIDIA: libvulkan1, the driver's Vulkan ICD nvidia_icd.json and libGLX_nvidia.so.0;"
  say "containers need NVIDIA_DRIVER_CAPABILITIES to include graphics). Files: $OUTDIR"
  exit 3
fi

# ---- 2. the tiny default's EMPO step -------------------------------------------------------------------
step() { # name backend [extra --set ...]
  local name=$1 backend=$2; shift 2
  say "-- bench/step.ts --steps $STEPS --warmup 0 --set backend=$backend $*"
  timeout "$STAGE_TIMEOUT" $TSX bench/step.ts --json --steps "$STEPS" --warmup 0 --set "backend=$backend" "$@" >"$OUTDIR/$name.json" 2>"$OUTDIR/$name.stderr" \
    || say "   FAILED (exit $?): see $OUTDIR/$name.stderr"
}
say ""
say "== 2. tiny default, one EMPO step (16 questions x 8 samples, up to 48 new tokens)"
step step-webgpu webgpu
step step-wasm wasm

# ---- 3. policy throughput ----------------------------------------------------------------------------------
if [ "$QUICK" = 0 ] && [ "$MODE" = gpu ]; then
  say ""
  say "== 3. policy throughput (bench/policy.ts --repeats 2: random weights, the tiny default's shape)"
  for b in webgpu wasm; do
    timeout "$STAGE_TIMEOUT" $TSX bench/policy.ts --json --backend "$b" --repeats 2 >"$OUTDIR/policy-$b.json" 2>"$OUTDIR/policy-$b.stderr" \
      || say "   bench/policy.ts --backend $b FAILED (exit $?): see $OUTDIR/policy-$b.stderr"
  done
fi

# ---- 4. a larger model -------------------------------------------------------------------------------------------
if [ "$MODE" = gpu ]; then
  say ""
  say "== 4. larger model: random weights, d=1024, 16 layers, 16 heads (4 KV), MLP 4096 (bench/policy.ts, webgpu only)"
  timeout "$STAGE_TIMEOUT" $TSX bench/policy.ts --json --backend webgpu --hidden 1024 --layers 16 --heads 16 --kv-heads 4 --intermediate 4096 \
    --only 'policyUpdate|16 prompts x 8|batch 16$|batch 1$' --repeats 2 >"$OUTDIR/policy-big-webgpu.json" 2>"$OUTDIR/policy-big-webgpu.stderr" \
    || say "   FAILED (exit $?): see $OUTDIR/policy-big-webgpu.stderr"
fi

# ---- summary ----------------------------------------------------------------------------------------------------
say ""
$TSX bench/gpu-summary.ts "$OUTDIR" "$MODE" | tee -a "$OUTDIR/summary.txt"
say ""
say "files: $OUTDIR"
exit 0
}
