#!/usr/bin/env bash
# Runs every notebook through the Mosaic kernel and saves the executed version (with outputs,
# charts as PNG) in place, for committing. Needs a build (mvn -B -DskipTests package) and
# Jupyter (Debian: jupyter-nbconvert python3-nbclient jupyter-client jupyter-core python3-ipykernel).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=$(mktemp -d)
trap 'rm -rf "$PREFIX"' EXIT
"$ROOT/bin/mosaic" jupyter install --prefix "$PREFIX" >/dev/null
export JUPYTER_PATH=$PREFIX/share/jupyter
cd "$ROOT/notebooks"
for nb in "${@:-*.ipynb}"; do
  for f in $nb; do
    start=$SECONDS
    jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=300 "$f"
    echo "$f: $((SECONDS - start)) s"
  done
done
