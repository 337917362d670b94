#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on a GPU machine that has no network, no Node.js and no npm (such as this
# project's lent GPU machines) into bench/.gpu-carry/ (git-ignored; about 60 MB):
#   node.xz                 this machine's Node.js binary (x86-64 Linux, needs only glibc and libstdc++)
#   node_modules.tar.xz     the files of node_modules that the benchmarks open (found by tracing them here)
#   debs/*.deb              the Vulkan and EGL loaders (libvulkan1, libegl1, ...) for `dpkg -x` there
# Run it here after `npm ci`, with apt reachable; then on the GPU machine, with bench/.gpu-carry carried along:
#   bash bench/gpu.sh        (it unpacks bench/.gpu-carry first when node or node_modules is missing)
# Usage: bash bench/gpu-carry.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=bench/.gpu-carry
[ "$(uname -m)" = x86_64 ] || { echo "bench/gpu-carry.sh: packs x86-64 binaries; run it on an x86-64 machine" >&2; exit 2; }
[ -d node_modules/webgpu ] || { echo "bench/gpu-carry.sh: run npm ci first" >&2; exit 2; }
command -v strace >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
rm -rf "$DEST" && mkdir -p "$DEST/debs"
TRACE=$(mktemp -d)

echo "1/3 node: $(command -v node) ($(node --version))"
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$DEST/node.xz"

echo "2/3 node_modules: tracing the files the benchmarks open (a few minutes)"
export EMPO_QUIET=1 EMPO_WEBGPU_ADAPTER=any TSX_DISABLE_CACHE=1 # without tsx's cache every file goes through esbuild
run() { strace -f -qq -e trace=openat,open,stat,statx,newfstatat,readlink,execve -o "$TRACE/$1.trace" "${@:2}" >/dev/null 2>&1 || echo "   (exit $? from: ${*:2})"; }
run backends node packages/cli/bin/empo.mjs backends --check
run step-webgpu node --import tsx bench/step.ts --json --steps 1 --warmup 0 --set backend=webgpu --set sampler.questions_per_step=2
run step-wasm node --import tsx bench/step.ts --json --steps 1 --warmup 0 --set backend=wasm --set sampler.questions_per_step=2
run policy node --import tsx bench/policy.ts --json --backend webgpu --hidden 64 --layers 1 --heads 2 --kv-heads 1 --intermediate 128 --only 'policyUpdate|batch 1$' --repeats 1
run summary node --import tsx bench/gpu-summary.ts "$TRACE" gpu
ROOT="$PWD/"
# Every node_modules path the traces name (files that exist), plus each package's package.json.
grep -ohE '"[^"]*node_modules/[^"]*"' "$TRACE"/*.trace | tr -d '"' | sed "s|^$ROOT||" | grep '^node_modules/' | sort -u > "$TRACE/paths"
: > "$TRACE/files"
while read -r p; do [ -f "$p" ] && echo "$p" >> "$TRACE/files"; done < "$TRACE/paths"
for d in $(sed -nE 's|^(node_modules/(@[^/]+/)?[^/]+)/.*|\1|p' "$TRACE/files" | sort -u); do
  [ -f "$d/package.json" ] && echo "$d/package.json" >> "$TRACE/files"
done
find node_modules/esbuild node_modules/@esbuild -type f >> "$TRACE/files" 2>/dev/null || true
# Workspace packages are links in node_modules/@empo: keep them as links (their files travel with the tree).
grep -v '^node_modules/@empo/' "$TRACE/files" | sort -u > "$TRACE/files.sorted"
find node_modules/@empo -maxdepth 1 -type l >> "$TRACE/files.sorted"
mv "$TRACE/files.sorted" "$TRACE/files"
tar -cJf "$DEST/node_modules.tar.xz" --no-recursion -T "$TRACE/files"
echo "   $(wc -l < "$TRACE/files") files"

echo "3/3 Vulkan and EGL loaders (apt-get download)"
mkdir -p /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd "$DEST/debs" && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
rm -rf "$TRACE"
du -sh "$DEST" "$DEST"/*
