#!/usr/bin/env bash
# Diagnostics behind scripts/gpu/NOTES.md (not part of the regular run): SASS of the mma kernel,
# every kernel's duration in one 16896-query search, an ncu profile of one mma_kernel launch
# (full epilogue and IGLA_CUDA_MMA_MODE=1) down to SASS lines, and timings by epilogue mode and
# tile-ring depth (IGLA_CUDA_STAGES). Writes into $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/igla-gpu-out}; mkdir -p "$OUT"
if [ -x .gpu-prebuilt/igla_cuda_bench ]; then B=.gpu-prebuilt/igla_cuda_bench; export LD_LIBRARY_PATH=$PWD/.gpu-prebuilt/lib
else B=build-gpu/igla_cuda_bench; fi
ARGS="--n 100000 --dims 300 --check 0 --no-compare"
cuobjdump -sass $B | awk '/Function : .*mma_kernelILi10E/{f=1} f&&/Function : /&&!/mma_kernelILi10E/{f=0} f' > "$OUT/mma10.sass"
echo "mma_kernel<10> SASS lines: $(grep -c '^ */\*[0-9a-f]*\*/' "$OUT/mma10.sass")"
echo "== kernel durations, one 16896-query search (after warm-up)"
timeout 120 ncu --launch-skip 12 --launch-count 6 --metrics gpu__time_duration.sum,lts__t_bytes.sum,dram__bytes.sum \
  $B --name d $ARGS --batches 16896 --seconds 0 2>&1 | grep -E "^\s+[a-z_]+.*\(|gpu__time|lts__t_bytes|dram__bytes" | head -40
for m in 0 1; do
  echo "== ncu mma_kernel mode $m"
  IGLA_CUDA_MMA_MODE=$m timeout 200 ncu --kernel-name regex:mma_kernel --launch-skip 2 --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
      --section SourceCounters --section InstructionStats -o "$OUT/prof$m" -f \
      $B --name ncu $ARGS --batches 16896 --seconds 0 > /dev/null 2>&1
  ncu -i "$OUT/prof$m.ncu-rep" --page details --print-details all > "$OUT/details$m.txt" 2>&1
  grep -E "Duration|Throughput|L2 Hit|Issued|Eligible|No Eligible|Stall|Executed Ipc|Warp Cycles Per Issued|Mem Pipes|L1/TEX Hit|Max Bandwidth|Busy" "$OUT/details$m.txt" | head -40
done
ncu -i "$OUT/prof0.ncu-rep" --page source --csv --print-source sass > "$OUT/sass0.csv" 2> /dev/null
rm -f "$OUT"/prof1.ncu-rep
echo "== timings (65536 queries): mode x stages"
for m in 0 1; do for s in 3 2; do
  echo "mode $m stages $s: $(IGLA_CUDA_MMA_MODE=$m IGLA_CUDA_STAGES=$s timeout 60 $B --name t $ARGS --batches 65536 --seconds 1 2>&1 | grep '^igla' | cut -f7-10)"
done; done
