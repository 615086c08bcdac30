#!/bin/sh
# run_mpi_test.sh MPIEXEC PROGRAM — runs a test program on 3 local MPI ranks (see run_mpi.sh for
# why the environment is set), as root too; the program's exit status is the verdict.
set -u
root=""
[ "$(id -u)" -eq 0 ] && root="--allow-run-as-root"
export OMPI_MCA_plm=isolated
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# shellcheck disable=SC2086 # $root is empty or one word
exec "$1" --oversubscribe $root -np 3 "$2"
