/* NVTX range push/pop for src/profile/nvtx.rs. NVTX v3 is header-only: the first call looks for
   a profiler's injection library (NVTX_INJECTION64_PATH, set by Nsight Systems) and, with none,
   every later call returns at once. Rust strings carry no terminating NUL, so the two parts of
   the message are joined into a bounded stack buffer. */
#include <stddef.h>
#include <string.h>
#include <nvtx3/nvToolsExt.h>

#define MAX_MESSAGE 255

static size_t append(char *buf, size_t at, const char *s, size_t n) {
    if (n > MAX_MESSAGE - at) {
        n = MAX_MESSAGE - at;
    }
    if (n > 0) {
        memcpy(buf + at, s, n);
    }
    return at + n;
}

void simclr_nvtx_push(const char *a, size_t a_len, const char *b, size_t b_len) {
    char buf[MAX_MESSAGE + 1];
    size_t n = append(buf, 0, a, a_len);
    n = append(buf, n, b, b_len);
    buf[n] = '\0';
    nvtxRangePushA(buf);
}

void simclr_nvtx_pop(void) { nvtxRangePop(); }
