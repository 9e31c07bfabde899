#!/bin/sh
# run_mpi.sh NP PROGRAM [ARGS...]: run PROGRAM on NP processes with mpirun, on this
# machine (Open MPI: --oversubscribe, so more processes than cores is fine, and
# --allow-run-as-root when run as root). Exits 77 (CTest and meson: skipped), with a
# message, when mpirun is not installed.
np=$1
shift
if ! command -v mpirun >/dev/null 2>&1; then
  echo "SKIPPED: mpirun not found (install Open MPI: apt-get install openmpi-bin libopenmpi-dev)"
  exit 77
fi
flags=""
if mpirun --version 2>/dev/null | grep -q "Open MPI"; then
  flags="--oversubscribe"
  [ "$(id -u)" = 0 ] && flags="$flags --allow-run-as-root"
fi
# shellcheck disable=SC2086
exec mpirun -np "$np" $flags "$@"
