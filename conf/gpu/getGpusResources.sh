#!/usr/bin/env bash
# Spark GPU discovery script for Mosaic: prints the GPUs of this machine (or container) as Spark
# expects, e.g.   {"name":"gpu","addresses":["0","1","2","3"]}
# Addresses are nvidia-smi indices, i.e. PCI bus order: set CUDA_DEVICE_ORDER=PCI_BUS_ID for the
# executors (the spark-defaults templates here do) so that CUDA numbers the GPUs the same way.
# Inside a container that sees only some GPUs (YARN/Kubernetes isolation), nvidia-smi lists just
# those and CUDA_VISIBLE_DEVICES is usually set; Mosaic's binding handles both.
#
#   MOSAIC_GPU_ADDRESSES="0,1"   skip nvidia-smi and report these (tests; GPU scheduling rehearsals
#                                on machines without GPUs, see docs/gpu.md)
#   NVIDIA_SMI=/path/nvidia-smi  which nvidia-smi to run
# Exit status 1, with the reason on stderr, when nvidia-smi is missing or fails: Spark then
# reports the failed discovery instead of starting an executor that has no GPU.
set -euo pipefail

emit() { # addresses, one per line, on stdin
  local json="" a
  while IFS= read -r a; do
    a=${a//[[:space:]]/}
    [[ -z $a ]] && continue
    [[ $a =~ ^[0-9]+$ ]] || { echo "getGpusResources.sh: unexpected GPU index '$a'" >&2; exit 1; }
    json+="${json:+,}\"$a\""
  done
  printf '{"name":"gpu","addresses":[%s]}\n' "$json"
}

if [[ -n ${MOSAIC_GPU_ADDRESSES:-} ]]; then
  tr ',' '\n' <<<"$MOSAIC_GPU_ADDRESSES" | emit
  exit 0
fi

smi=${NVIDIA_SMI:-$(command -v nvidia-smi || true)}
if [[ -z $smi ]]; then
  echo "getGpusResources.sh: nvidia-smi not found: no NVIDIA driver on $(hostname)" >&2
  exit 1
fi
if ! indices=$("$smi" --query-gpu=index --format=csv,noheader 2>&1); then
  echo "getGpusResources.sh: nvidia-smi failed on $(hostname): $indices" >&2
  exit 1
fi
emit <<<"$indices"
