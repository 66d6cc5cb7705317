#!/usr/bin/env bash
# Compiles src/main/cuda/*.cu to fatbins (SASS for each arch in MOSAIC_CUDA_ARCHS plus PTX for
# the newest, so newer GPUs JIT it) next to the classes, as jar resources:
#   <classes>/dev/mosaic/kernels/gpu/<name>.fatbin
#   <classes>/dev/mosaic/kernels/gpu/ptxas-report.txt   registers / stack / spills per kernel & arch,
#     tensor-core instructions in the PTX, and HMMA instructions in the SASS where the toolkit has
#     cuobjdump (this one, nvcc 13.0 from /usr/local/cuda, ships neither cuobjdump nor nvdisasm)
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

# cuobjdump disassembles the fatbin's SASS: next to nvcc, in $CUDA_HOME/bin (nvcc may be a
# wrapper script elsewhere), else on the PATH; optional.
cuobjdump=
for c in "$(dirname "$nvcc")/cuobjdump" "${CUDA_HOME:-/usr/local/cuda}/bin/cuobjdump" \
    "$(command -v cuobjdump || true)"; do
  if [[ -n $c && -x $c ]]; then
    cuobjdump=$c
    break
  fi
done

mkdir -p "$out" "$work"
gencode=()
last=
for a in $archs; do
  gencode+=("-gencode" "arch=compute_$a,code=sm_$a")
  last=$a
done
gencode+=("-gencode" "arch=compute_$last,code=compute_$last")
stamp="nvcc=$("$nvcc" --version | tail -1) archs=$archs cuobjdump=${cuobjdump:-none}"

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
    # -keep leaves the PTX of every arch in keep-<name>/, where the tensor-core count comes from.
    rm -rf "$work/keep-$name"
    mkdir -p "$work/keep-$name"
    "$nvcc" -fatbin -O3 -std=c++17 "${gencode[@]}" -Xptxas -v,-warn-spills,-warn-lmem-usage \
      -keep -keep-dir "$work/keep-$name" \
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

  # Condense the ptxas -v lines: one line per (arch, kernel), with the occupancy that follows
  # from registers and shared memory, and the tensor-core instructions in the kernel's PTX.
  {
    echo "# ptxas -v of the Mosaic CUDA kernels ($stamp)"
    echo "# module arch kernel registers stack_bytes spill_store_bytes spill_load_bytes static_smem_bytes dyn_smem_bytes blocks_per_sm occupancy_pct tensor_core_mma hmma_sass"
    echo "# dyn_smem_bytes: at the largest head dim of the kernel's bucket; blocks_per_sm and occupancy_pct"
    echo "#   (resident warps / 64) by the occupancy calculator's rules: registers allocated per warp in"
    echo "#   units of 256 out of 65536, 1 KiB of shared memory reserved per block, 2048 threads, 32 blocks"
    echo "#   per SM; shared memory per SM 164 KiB on sm_80/87, 100 KiB on sm_86/89/120, 228 KiB on sm_90/100"
    echo "# tensor_core_mma: wmma.mma / mma.sync instructions in the kernel's PTX for that arch"
    echo "# hmma_sass: HMMA instructions in the kernel's SASS for that arch (cuobjdump -sass), or - when"
    echo "#   the toolkit has no cuobjdump (then only the PTX is checked)"
    for cu in "${sources[@]}"; do
      name=$(basename "$cu" .cu)
      # "<arch> <kernel> <count>" for every entry in the kept PTX files.
      for ptx in "$work/keep-$name"/*.compute_*.ptx; do
        [[ -f $ptx ]] || continue
        a=${ptx##*.compute_}
        a=sm_${a%.ptx}
        awk -v arch="$a" '
          /^\.(visible )?\.entry / { if (k != "") print arch, k, n; k = $NF; sub(/\(.*/, "", k); n = 0; next }
          /^[ \t]*\.(visible )?\.entry / { if (k != "") print arch, k, n; k = $NF; sub(/\(.*/, "", k); n = 0; next }
          /(wmma\.mma|mma\.sync)/ { n++ }
          END { if (k != "") print arch, k, n }
        ' "$ptx"
      done >"$work/$name.mma"
      # "<arch> <kernel> <count>" of HMMA in the SASS, when cuobjdump is there.
      : >"$work/$name.hmma"
      if [[ -n $cuobjdump ]]; then
        "$cuobjdump" -sass "$out/$name.fatbin" | awk '
          /arch = sm_[0-9]+/ { arch = $3; next }
          /Function : / { k = $3; n[arch " " k] += 0; next }
          /HMMA/ { n[arch " " k]++ }
          END { for (x in n) print x, n[x] }
        ' >"$work/$name.hmma"
      fi
      awk -v mod="$name" -v mmafile="$work/$name.mma" -v hmmafile="$work/$name.hmma" '
        BEGIN { while ((getline line < mmafile) > 0) { split(line, m, " "); mma[m[1] " " m[2]] = m[3] }
                while ((getline line < hmmafile) > 0) { split(line, m, " "); hmma[m[1] " " m[2]] = m[3] } }
        /Compiling entry function/ { split($0, q, "\047"); k = q[2]; arch = q[4];
                                     stack = 0; st = 0; ld = 0; next }
        /bytes stack frame/ { stack = $1; st = $5; ld = $9; next }
        /Used [0-9]+ registers/ {
          regs = 0; smem = 0
          for (i = 1; i < NF; i++) {
            if ($i == "Used") regs = $(i + 1)
            if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) smem = $i
          }
          threads = k ~ /^mosaic_flash_tc_/ ? 128 : 256
          dmax = match(k, /_d[0-9]+$/) ? substr(k, RSTART + 2) + 0 : 0
          dyn = k ~ /^mosaic_flash_tc_/ ? 640 * dmax + 30720 \
              : (k ~ /^mosaic_flash_fwd_/ ? (2 * 64 * (dmax + 1) + 64 * 65) * 4 : 0)
          smSM = arch ~ /^sm_(86|89|120)$/ ? 102400 : (arch ~ /^sm_(80|87)$/ ? 167936 : 233472)
          warps = threads / 32
          rpw = int((regs * 32 + 255) / 256) * 256
          b = rpw > 0 ? int(int(65536 / rpw) / warps) : 32
          bs = int(smSM / (dyn + smem + 1024)); if (bs < b) b = bs
          bt = int(2048 / threads); if (bt < b) b = bt
          if (b > 32) b = 32
          occ = int(b * warps * 100 / 64 + 0.5)
          t = (arch " " k) in mma ? mma[arch " " k] : "?"
          hm = (arch " " k) in hmma ? hmma[arch " " k] : "-"
          print mod, arch, k, regs, stack, st, ld, smem, dyn, b, occ, t, hm
        }
' "$work/$name.log" | sort
    done
    echo "# dynamic shared memory of mosaic_flash_fwd_*_d<DMAX> at head dim d: (2*64*(d+1) + 64*65)*4 bytes:"
    for d in 32 64 128 256; do
      echo "#   d=$d: $(( (2 * 64 * (d + 1) + 64 * 65) * 4 )) bytes"
    done
    echo "# dynamic shared memory of mosaic_flash_tc_*_d<DMAX>: 640*DMAX + 30720 bytes, whatever the head dim"
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
no_mma=$(awk '!/^#/ && $3 ~ /^mosaic_flash_tc_/ && $12 + 0 == 0' "$report")
if [[ -n $no_mma ]]; then
  echo "[mosaic-cuda] WARNING: tensor-core kernels without wmma.mma/mma.sync in their PTX:" >&2
  echo "$no_mma" | sed 's/^/[mosaic-cuda]   /' >&2
else
  echo "[mosaic-cuda] tensor-core kernels: $(awk '!/^#/ && $3 ~ /^mosaic_flash_tc_/' "$report" | wc -l)" \
    "builds, each with wmma.mma in its PTX"
fi
if [[ -z $cuobjdump ]]; then
  echo "[mosaic-cuda] SASS not inspected: no cuobjdump next to $nvcc, in ${CUDA_HOME:-/usr/local/cuda}/bin" \
    "or on the PATH (hmma_sass -)"
else
  no_hmma=$(awk '!/^#/ && $3 ~ /^mosaic_flash_tc_/ && $13 !~ /^[1-9]/' "$report")
  if [[ -n $no_hmma ]]; then
    echo "[mosaic-cuda] WARNING: tensor-core kernels without HMMA in their SASS:" >&2
    echo "$no_hmma" | sed 's/^/[mosaic-cuda]   /' >&2
  else
    echo "[mosaic-cuda] tensor-core kernels: every build has HMMA in its SASS ($cuobjdump)"
  fi
fi
