#!/usr/bin/env bash
# The GPU measurements of one device session, in one command (the figures in the README
# come from it): search on the device (benchmarks/search_gpu.py), then full-size page
# encoding fed by the ingestion pipeline (benchmarks/encode_gpu.py). Each step writes its
# output under $OUT as it goes, so a step cut short still leaves what it measured.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_session.sh
#
# Python packages the GPU machine lacks (faiss-cpu, platformdirs, pdf2image) are taken
# from wheels in .whl/ when that folder exists, made beforehand on a machine with PyPI:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux_2_28_x86_64 --platform any -d .whl faiss-cpu platformdirs pdf2image
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    nproc
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    python3 -c "import retriever.search.device_pages, indexers.faiss.device, plugins.colpali.synthetic; print('imports ok')"
} 2>&1 | tee "$OUT/machine.txt"
timeout "${SEARCH_S:-270}" python3 benchmarks/search_gpu.py --json 2>&1 | tee "$OUT/search_gpu.txt"
timeout "${ENCODE_S:-240}" python3 benchmarks/encode_gpu.py --batch-sizes 8,32 --pages 64 \
    --repeats 2 --pipeline 2>&1 | tee "$OUT/encode_gpu.txt"
