/* mmupt version: the build and every library it links, with versions, and what GPU it sees. */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "cli.h"
#include "mmupt/err.h"
#include "mmupt/gpu.h"
#include "mmupt/version.h"
#include "mmupt_build.h"

static void print_cuda(void)
{
    struct gpu_info g;
    gpu_query(&g);
    if (!g.built) {
        printf("cuda      %s\n", g.reason);
        return;
    }
    printf("cuda      runtime %d.%d, driver %d.%d, arch sm_%s\n", g.runtime_version / 1000,
           (g.runtime_version % 1000) / 10, g.driver_version / 1000, (g.driver_version % 1000) / 10,
           MMUPT_CUDA_ARCH);
    printf("cublas    %d.%d.%d\n", g.cublas_version / 10000, (g.cublas_version / 100) % 100, g.cublas_version % 100);
    printf("cudnn     %d.%d.%d\n", g.cudnn_version / 10000, (g.cudnn_version / 100) % 100, g.cudnn_version % 100);
    printf("nccl      %d.%d.%d\n", g.nccl_version / 10000, (g.nccl_version / 100) % 100, g.nccl_version % 100);
    if (g.device_count > 0)
        printf("gpu       %d device(s); device 0: %s (sm_%d%d)\n", g.device_count, g.device_name, g.cc_major, g.cc_minor);
    else
        printf("gpu       none: %s\n", g.reason);
}

int cmd_version(int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc > 1) {
        fputs("usage: mmupt version\n\nPrint mmupt's version, build options and the versions of the libraries it "
              "uses,\nand which GPUs the CUDA backend can see.\n",
              argc > 1 && !cli_wants_help(argc, argv) ? stderr : stdout);
        return argc > 1 && !cli_wants_help(argc, argv) ? MMUPT_EXIT_USAGE : MMUPT_EXIT_OK;
    }
    unsigned h5maj, h5min, h5rel;
    H5get_libversion(&h5maj, &h5min, &h5rel);
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(mpi, &len);
    char *nl = strchr(mpi, '\n');
    if (nl) *nl = '\0';
    char *comma = strchr(mpi, ',');
    if (comma) *comma = '\0';
    printf("mmupt     %s (%s build%s)\n", mmupt_version_string, MMUPT_BUILD_TYPE, MMUPT_SANITIZE);
    printf("compiler  %s\n", MMUPT_C_COMPILER);
    printf("libyaml   %s\n", yaml_get_version_string());
    printf("hdf5      %u.%u.%u (serial)\n", h5maj, h5min, h5rel);
    printf("mpi       %s\n", mpi);
#ifdef _OPENMP
    printf("openmp    %d\n", _OPENMP);
#else
    printf("openmp    not enabled\n");
#endif
    print_cuda();
    return MMUPT_EXIT_OK;
}
