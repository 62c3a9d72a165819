/* Whether cuDNN's engines take the SDPA graphs src/gpu/sdpa_cudnn.c builds, checked WITHOUT a GPU:
 * cuDNN (9.8 and later) plans a graph for a device described by a JSON device-property record, and
 * its runtime-fusion engines generate and compile the graph's kernels before anything needs the
 * device. Only loading the compiled kernels needs the driver: run with CUDA's stub libcuda (as
 * tests/gpu/sdpa_plan_check.sh does), a graph an engine takes fails exactly there, with
 * cuLibraryLoadData's CUDA_ERROR_STUB_LIBRARY (34) - "compiled" below - and a graph no engine takes
 * fails earlier, with cuDNN's reason. On a machine with a GPU the plans simply succeed ("planned").
 *
 * usage: sdpa_plan_check DEVICEPROP.json [b s heads kv_heads head_dim causal]...
 * (b packed segments of up to s rows, b a power of two and s a multiple of 128 as src/gpu/sdpa_cudnn.c
 * calls cuDNN (include/mmupt/sdpa_layout.h); default shapes: the 1.5B learner, 8 x 384, 12/2
 * heads of 128, causal, and in micro-batches of 32 and 64 (benchmarks/learner_cuda.sh's larger rows); Qwen2.5-VL-3B's text, 2 x 1024, 16/2 heads of 128; its vision windows, 16 x
 * 128 (18 windows of two 336-pixel images: calls of 16 and 2), 16 heads of 80, not causal; the 0.5B
 * rollout model's prefill of 64 prompts (as 64 x 128), 14/2 heads of 64; the model fixtures' 2 x 128, 4/2 heads of 16.)
 * Exit 0 when every graph is planned or compiled, 1 when any is refused. */
#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/sdpa_cudnn.h"

static cudnnBackendDescriptor_t device_from(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "sdpa_plan_check: cannot open %s\n", path);
        exit(2);
    }
    static char json[16384];
    size_t n = fread(json, 1, sizeof json - 1, f);
    fclose(f);
    json[n] = 0;
    cudnnBackendDescriptor_t d = NULL;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR, &d);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(d, CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION, CUDNN_TYPE_CHAR, (int64_t)n + 1, json);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(d);
    if (s != CUDNN_STATUS_SUCCESS) {
        char msg[300] = "";
        cudnnGetLastErrorString(msg, sizeof msg);
        fprintf(stderr, "sdpa_plan_check: %s is not a device cuDNN %zu takes: %s %s\n", path, cudnnGetVersion(),
                cudnnGetErrorString(s), msg);
        exit(2);
    }
    return d;
}

/* One graph: 0 planned or compiled, 1 refused. */
static int check(cudnnBackendDescriptor_t dev, const int *sh, int backward, int acc)
{
    char why[512];
    int rc = sdpa_plan_for_device(dev, sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], backward, acc, why, sizeof why);
    const char *verdict = rc == 0 ? "planned" : strstr(why, "(34)") ? "compiled" : "REFUSED";
    printf("%-9s %2d x %4d rows, %2d/%d heads of %3d, %-10s %-8s%s\n", verdict, sh[0], sh[1], sh[2], sh[3], sh[4],
           sh[5] ? "causal" : "not causal", backward ? "backward" : "forward", acc ? " (dQ accumulated)" : "");
    if (strcmp(verdict, "REFUSED") == 0) printf("          %s\n", why);
    return strcmp(verdict, "REFUSED") == 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (argc - 2) % 6) {
        fprintf(stderr, "usage: sdpa_plan_check DEVICEPROP.json [b s heads kv_heads head_dim causal]...\n");
        return 2;
    }
    static const int dflt[][6] = {{8, 384, 12, 2, 128, 1}, {32, 384, 12, 2, 128, 1}, {64, 384, 12, 2, 128, 1},
                                  {2, 1024, 16, 2, 128, 1}, {16, 128, 16, 16, 80, 0},
                                  {64, 128, 14, 2, 64, 1}, {2, 128, 4, 2, 16, 1}};
    int n = argc > 2 ? (argc - 2) / 6 : (int)(sizeof dflt / sizeof dflt[0]);
    cudnnBackendDescriptor_t dev = device_from(argv[1]);
    printf("cuDNN %zu, device %s\n", cudnnGetVersion(), argv[1]);
    int refused = 0;
    for (int i = 0; i < n; i++) {
        int sh[6];
        for (int j = 0; j < 6; j++) sh[j] = argc > 2 ? atoi(argv[2 + 6 * i + j]) : dflt[i][j];
        refused += check(dev, sh, 0, 0);
        for (int acc = 0; acc < 2; acc++) refused += check(dev, sh, 1, acc);
    }
    cudnnBackendDestroyDescriptor(dev);
    printf("%d graph(s) refused\n", refused);
    return refused != 0;
}
