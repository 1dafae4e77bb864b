# Sums `ncu --metrics gpu__time_duration.sum` output by kernel (template arguments kept, namespaces
# and parameter lists dropped): "  name  ms (launches)", then "all". Used by run.sh's mt mode.
/^  [A-Za-z_].*Context [0-9]/ {
  k = $0
  sub(/^ +/, "", k); sub(/^void /, "", k)
  gsub(/igla::cuda::|<unnamed>::|\(anonymous namespace\)::/, "", k); sub(/^unnamed>::/, "", k)  # ncu cuts the namespace so
  sub(/\(.*/, "", k)
}
/gpu__time_duration.sum/ {
  v = $NF; u = $(NF - 1)
  if (u ~ /^us/) v /= 1e3; else if (u ~ /^ns/) v /= 1e6; else if (u ~ /^s/) v *= 1e3
  t[k] += v; n[k]++; all += v
}
END { for (k in t) printf "    %-32s %8.3f ms (%d)\n", k, t[k], n[k]; printf "    %-32s %8.3f ms\n", "all", all }
