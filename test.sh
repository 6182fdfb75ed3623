#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run calls exactly this):
# installs the package with its dev extras, brings up what the tests need that this machine can run
# (a real single-node Slurm, scripts/slurm-ci.sh), runs pytest, and tears Slurm down again.
set -euo pipefail
cd "$(dirname "$0")"

# torch first, pinned: on the project's machines this takes the local CPU wheel, not CUDA from the registry.
python3 -m pip install --quiet --disable-pip-version-check torch==2.13.0
python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"

# A CJK font under CI, so the zh plot tests run rather than skip (7.5 MB); elsewhere they skip without one.
if [ "${CI:-}" = true ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -d /usr/share/fonts/truetype/wqy ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends fonts-wqy-zenhei >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends fonts-wqy-zenhei >/dev/null 2>&1; } \
    || echo "test.sh: no CJK font could be installed; the zh plot tests will skip" >&2
fi

slurm_up=0
if [ -x scripts/slurm-ci.sh ] && [ "${XDIMO_NO_SLURM:-0}" != 1 ]; then
  if scripts/slurm-ci.sh status >/dev/null 2>&1; then
    echo "test.sh: Slurm already up: used, and left up (test.sh stops only a Slurm it started)" >&2
  elif scripts/slurm-ci.sh up; then
    slurm_up=1
  elif [ "${CI:-}" = true ]; then
    echo "test.sh: Slurm did not come up under CI; the Slurm tests will fail rather than skip" >&2
  fi
fi
cleanup() { if [ "$slurm_up" = 1 ]; then scripts/slurm-ci.sh down || true; fi; }
trap cleanup EXIT

set +e
python3 -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
