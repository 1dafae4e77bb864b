#!/usr/bin/env bash
# The main job: set up, fetch real GloVe 6B 100d vectors (341,479 words) into $IGLA_HOME
# (default ~/.cache/igla), quantize them to 2-bit ternary codes and answer questions on them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
igla=build/igla
$igla fetch-glove

say() { printf '\n\033[1m$ igla %s\033[0m\n' "$*"; }
say analogy man king woman -k 5 --time;  $igla analogy man king woman -k 5 --time
say analogy paris france tokyo -k 3;     $igla analogy paris france tokyo -k 3
say analogy man king woman --mode clamp -k 3 ; $igla analogy man king woman --mode clamp -k 3
say nearest frog -k 8;                   $igla nearest frog -k 8
say similarity cat dog;                  $igla similarity cat dog
say most-similar -p king woman -n man -k 3; $igla most-similar -p king woman -n man -k 3
say doesnt-match breakfast cereal dinner lunch; $igla doesnt-match breakfast cereal dinner lunch
say vsa bundle cat dog -k 5;             $igla vsa bundle cat dog -k 5
say info;                                $igla info
Q=data/questions-words.txt   # shipped in the repository (data/README.md)
say eval analogies "$Q" --restrict 30000; $igla eval analogies "$Q" --restrict 30000
