/* A stand-in for Nsight Systems, for tests/profile_nvtx.rs: an NVTX injection library (loaded
   through NVTX_INJECTION64_PATH, as nsys loads its own) that counts the ranges pushed by name and
   checks that pushes and pops balance. At exit it writes to $NVTX_CHECK_OUT:
     max_depth <n>      deepest nesting seen
     open_at_exit <n>   ranges the exiting thread left open
     bad_pops <n>       pops with no open range
     range <count> <name>   one line per distinct name */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nvtx3/nvToolsExt.h>

#define SLOTS 4096
#define NAME 160

static struct { char name[NAME]; long count; } table[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int max_depth, bad_pops;
static __thread int depth;

static unsigned long hash(const char *s) {
    unsigned long h = 5381;
    while (*s) h = h * 33 + (unsigned char)*s++;
    return h;
}

static int push(const char *msg) {
    pthread_mutex_lock(&lock);
    unsigned long i = hash(msg) % SLOTS;
    for (int probe = 0; probe < SLOTS; probe++, i = (i + 1) % SLOTS) {
        if (table[i].count == 0) {
            strncpy(table[i].name, msg, NAME - 1);
        }
        if (strncmp(table[i].name, msg, NAME - 1) == 0) {
            table[i].count++;
            break;
        }
    }
    depth++;
    if (depth > max_depth) max_depth = depth;
    pthread_mutex_unlock(&lock);
    return depth - 1;
}

static int pop(void) {
    if (depth == 0) {
        pthread_mutex_lock(&lock);
        bad_pops++;
        pthread_mutex_unlock(&lock);
        return -1;
    }
    return --depth;
}

static void report(void) {
    const char *path = getenv("NVTX_CHECK_OUT");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) return;
    fprintf(f, "max_depth %d\nopen_at_exit %d\nbad_pops %d\n", max_depth, depth, bad_pops);
    for (int i = 0; i < SLOTS; i++) {
        if (table[i].count) fprintf(f, "range %ld %s\n", table[i].count, table[i].name);
    }
    fclose(f);
}

int InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get_table) {
    const NvtxExportTableCallbacks *cb =
        (const NvtxExportTableCallbacks *)get_table(NVTX_ETID_CALLBACKS);
    NvtxFunctionTable core = NULL;
    unsigned int size = 0;
    if (!cb || !cb->GetModuleFunctionTable(NVTX_CB_MODULE_CORE, &core, &size) ||
        size < NVTX_CBID_CORE_RangePop) {
        return 0;
    }
    *core[NVTX_CBID_CORE_RangePushA] = (NvtxFunctionPointer)push;
    *core[NVTX_CBID_CORE_RangePop] = (NvtxFunctionPointer)pop;
    atexit(report);
    return 1;
}
