# Sourced by the launch scripts: environment for building and running mmupt on this machine.
# nvcc lives outside the default PATH on most CUDA installs.
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
    export PATH="/usr/local/cuda/bin:$PATH"
fi
# Open MPI refuses to run as root unless told twice; containers and CI run as root.
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Let small machines start more ranks than cores (the quickstart runs 3 ranks on 2 cores).
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
