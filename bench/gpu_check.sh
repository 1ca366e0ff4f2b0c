#!/usr/bin/env bash
# Every GPU figure of issue 11 in one device call (see ../shared/GPU.md for the set-up of .gpu/site).
# Writes each part's output to $OUT/<part>.txt as well as to the terminal. About 4-5 minutes on an H100.
#
#   bash bench/gpu_check.sh [DATA_DIR]     # DATA_DIR: seqs.fa + labels.tsv of the 10-TF benchmark
#                                          # (genocnn simulate-style, made here beforehand); else simulated there
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
# the device image ships no bytecode and forbids writing it: every process would compile every module
# (6.7 s per `genocnn train`); cache it as an installed package has it
unset PYTHONDONTWRITEBYTECODE
export PYTHONPATH=$PWD/.gpu/site:$PWD PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/numba PYTHONPYCACHEPREFIX=/tmp/pyc
DATA=${1:-}
data_args=()
[ -n "$DATA" ] && data_args=(--data "$DATA")
nvidia-smi -L
python3 -c "import genocnn.cli, genocnn.training, genocnn.scanning, pandas, Bio, pyjaspar"  # fills the cache
part() { local name=$1 limit=$2; shift 2; echo "== $name"; timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"; }
part gpu_tests 200 python3 -m pytest -m gpu -q -p no:cacheprovider -o addopts=-ra tests
part scan_engine 60 python3 bench/scan_engine.py
part scan 90 python3 bench/scan.py --threads 1 16 --repeats 3 --cpu-mbp 0.5 --gpu-mbp 200
part train_default 300 python3 bench/train_speed.py "${data_args[@]}" --epochs 0
part train_5 90 python3 bench/train_speed.py "${data_args[@]}" --epochs 5
part fixed_costs 90 python3 bench/fixed_costs.py --device cuda --repeats 1
