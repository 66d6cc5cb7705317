#!/usr/bin/env bash
# Compiles src/main/cuda/*.cu to fatbins (SASS for each arch in MOSAIC_CUDA_ARCHS plus PTX for
# the newest, so newer GPUs JIT it) next to the classes, as jar resources:
#   <classes>/dev/mosaic/kernels/gpu/<name>.fatbin
#   <classes>/dev/mosaic/kernels/gpu/ptxas-report.txt   registers / stack / spills per kernel & arch
# Run by the cuda-fatbin profile of mosaic-kernels/pom.xml (generate-resources). Without nvcc it
# prints why and exits 0: the jar then carries only the .cu sources and NVRTC compiles them at
# first use. Inputs unchanged since the last run => nothing is compiled (the report is printed
# again so every build log has it). A compile error fails the build; spills only warn here, and
# the tests (KernelBinariesTest) fail on them.
#
# usage: build-fatbin.sh <cuda source dir> <classes dir> <work dir>
#   NVCC               nvcc to use (default: nvcc on the PATH, else $CUDA_HOME/bin/nvcc)
#   MOSAIC_CUDA_ARCHS  SASS targets, default "80 90"; PTX is embedded for the last one
set -euo pipefail
src=$1
classes=$2
work=$3
out=$classes/dev/mosaic/kernels/gpu
report=$out/ptxas-report.txt
archs=${MOSAIC_CUDA_ARCHS:-80 90}

nvcc=${NVCC:-}
if [[ -z $nvcc ]]; then
  nvcc=$(command -v nvcc || true)
fi
if [[ -z $nvcc && -n ${CUDA_HOME:-} && -x $CUDA_HOME/bin/nvcc ]]; then
  nvcc=$CUDA_HOME/bin/nvcc
fi
if [[ -z $nvcc ]]; then
  echo "[mosaic-cuda] nvcc not found (PATH, NVCC, CUDA_HOME): no fatbin in this build;" \
    "the jar ships the .cu sources and NVRTC compiles them at first use on a GPU machine."
  exit 0
fi

mkdir -p "$out" "$work"
gencode=()
last=
for a in $archs; do
  gencode+=("-gencode" "arch=compute_$a,code=sm_$a")
  last=$a
done
gencode+=("-gencode" "arch=compute_$last,code=compute_$last")
stamp="nvcc=$("$nvcc" --version | tail -1) archs=$archs"

sources=("$src"/*.cu)
stale=0
[[ -f $report && -f $work/stamp && $(cat "$work/stamp") == "$stamp" ]] || stale=1
for cu in "${sources[@]}"; do
  name=$(basename "$cu" .cu)
  [[ -f $out/$name.fatbin && $out/$name.fatbin -nt $cu && $out/$name.fatbin -nt $0 ]] || stale=1
done

if (( stale )); then
  echo "[mosaic-cuda] $stamp"
  start=$SECONDS
  # One nvcc per source, in parallel (each already runs ptxas per arch).
  pids=()
  for cu in "${sources[@]}"; do
    name=$(basename "$cu" .cu)
    "$nvcc" -fatbin -O3 -std=c++17 "${gencode[@]}" -Xptxas -v,-warn-spills,-warn-lmem-usage \
      -o "$out/$name.fatbin" "$cu" >"$work/$name.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      failed=1
      echo "[mosaic-cuda] nvcc failed on ${sources[$i]}:" >&2
      cat "$work/$(basename "${sources[$i]}" .cu).log" >&2
    fi
  done
  (( failed )) && exit 1

  # Condense the ptxas -v lines: one line per (arch, kernel).
  {
    echo "# ptxas -v of the Mosaic CUDA kernels ($stamp)"
    echo "# module arch kernel registers stack_bytes spill_store_bytes spill_load_bytes static_smem_bytes"
    for cu in "${sources[@]}"; do
      name=$(basename "$cu" .cu)
      awk -v mod="$name" '
        /Compiling entry function/ { split($0, q, "\047"); k = q[2]; arch = q[4];
                                     stack = 0; st = 0; ld = 0; next }
        /bytes stack frame/ { stack = $1; st = $5; ld = $9; next }
        /Used [0-9]+ registers/ {
          regs = 0; smem = 0
          for (i = 1; i < NF; i++) {
            if ($i == "Used") regs = $(i + 1)
            if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) smem = $i
          }
          print mod, arch, k, regs, stack, st, ld, smem
        }
' "$work/$name.log" | sort
    done
    echo "# dynamic shared memory of mosaic_flash_fwd_*_d<DMAX> at head dim d: (2*64*(d+1) + 64*65)*4 bytes:"
    for d in 32 64 128 256; do
      echo "#   d=$d: $(( (2 * 64 * (d + 1) + 64 * 65) * 4 )) bytes"
    done
  } >"$report.tmp"
  mv "$report.tmp" "$report"
  echo "$stamp" >"$work/stamp"
  echo "[mosaic-cuda] compiled ${#sources[@]} sources in $((SECONDS - start)) s"
else
  echo "[mosaic-cuda] fatbins up to date"
fi

for cu in "${sources[@]}"; do
  name=$(basename "$cu" .cu)
  echo "[mosaic-cuda] $name.fatbin $(wc -c <"$out/$name.fatbin") bytes"
done
sed 's/^/[mosaic-cuda] /' "$report"
spills=$(awk '!/^#/ && ($5 + $6 + $7) > 0' "$report")
if [[ -n $spills ]]; then
  echo "[mosaic-cuda] WARNING: local memory (stack or spills) in:" >&2
  echo "$spills" | sed 's/^/[mosaic-cuda]   /' >&2
else
  echo "[mosaic-cuda] no kernel uses local memory (0 stack, 0 spill bytes)"
fi
