# Sourced by the scripts run from a folder staged by stage.sh (host_time.sh, shared_bound.sh, ...):
# into that folder, OUT made, the staged libraries on the path, the binaries and the default index
# unpacked on first use; Q and IX name the question file and the index.
cd "$(dirname "${BASH_SOURCE[1]}")" || exit 1
OUT=${OUT:-/tmp/igla-gpu-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/lib:${LD_LIBRARY_PATH:-}
[ -x igla ] || tar xJf bin.tar.xz
[ -f data/glove-100d.igla ] || xz -d -T0 -k data/glove-100d.igla.xz
Q=data/questions-words.txt
IX=data/glove-100d.igla
