// Block-shared memory of the emulated device, checked like compute-sanitizer's racecheck: two
// threads of a block touching the same bytes in one barrier interval with nothing ordering them
// (read after write, write after read, write after write) is an error, and so is a read of
// shared bytes no thread of the block has written (on a GPU: whatever an earlier block left).
//
// Why: fibers switch only at barriers and collectives, so a missing __syncthreads usually gives
// the right answer here and a wrong one on a GPU. These checks do not depend on the schedule:
// each access is compared with the earlier ones of its interval.
//
// Where shared memory is: every `__shared__` declaration becomes a `static thread_local`
// (build/shared_rewrite.rs), so every shared variable lies in the static TLS block of the host
// thread that runs the block. The kernels' instrumented accesses (memory.cpp's hooks) that fall
// there are shared memory, except `emu_cur` (threadIdx & co.), which kernels only read and is
// left out. Fiber stacks are private and constants read-only: neither is tracked. Bounds and
// names come from the variables' registry (shared_vars.cpp).
//
// What orders two accesses: a __syncthreads between them, or, for two lanes of one warp, a
// __syncwarp whose mask names both. Shuffles and votes order no memory (CUDA promises ordering
// only for __syncwarp). Atomics on shared memory do not race with each other, only with plain
// accesses.
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "cuda_emu_abi.h"
#include "emu.h"

__thread EmuRange emu_shared = {0, 0};

namespace {
constexpr uint16_t NONE = 0xffff, MANY = 0xfffe;

// One byte of shared memory: who touched it in the current interval (`epoch`), and when it was
// last written (initcheck). Fields of an older interval are void.
struct Cell {
  uint32_t epoch, written;
  uint32_t wseq;     // the writer's warp's __syncwarp count at the write
  uint32_t rseq;     // the latest warp count at a read
  uint32_t rlanes;   // lanes of the readers, when they share a warp
  uint16_t writer;   // the writer (MANY: several atomics)
  uint16_t reader;   // the reader (MANY: several)
  uint16_t rwarp;    // the warp of every reader (MANY: several warps)
  bool atomic;       // the writes of this interval were atomics
};

struct State {
  bool ready = false;
  uint64_t skip = 0;          // &emu_cur
  std::vector<Cell> cells;    // one per byte of the TLS block
  uint32_t epoch = 0, first = 0;
  // Per warp: the masks of the __syncwarps completed in the current interval, in order.
  std::vector<std::vector<uint32_t>> syncs;
};
thread_local State tl;

struct Found {
  uint64_t lo = 0, size = 0;
};

// The calling thread's copy of the TLS segment of the module that holds `emu_cur`.
int find_block(dl_phdr_info* info, size_t size, void* out) {
  if (size < offsetof(dl_phdr_info, dlpi_tls_data) + sizeof(void*) || !info->dlpi_tls_data)
    return 0;
  for (int k = 0; k < info->dlpi_phnum; ++k) {
    if (info->dlpi_phdr[k].p_type != PT_TLS) continue;
    uint64_t lo = (uint64_t)info->dlpi_tls_data, n = info->dlpi_phdr[k].p_memsz;
    if ((uint64_t)&emu_cur - lo < n) {
      *(Found*)out = {lo, n};
      return 1;
    }
  }
  return 0;
}

void prepare() {
  Found f;
  dl_iterate_phdr(find_block, &f);
  if (!f.size)
    fprintf(stderr,
            "simclr emulated device: the thread-local block holding shared memory was not found; "
            "shared-memory race checks are off\n");
  emu_shared = {f.lo, f.size};
  tl.skip = (uint64_t)&emu_cur;
  tl.cells.assign(f.size, Cell{});
  shared_vars_init(f.size);
  tl.ready = true;
}

// Is an access by thread `u`, made when its warp had completed `useq` __syncwarps in this
// interval, ordered before the running thread `t`?
bool ordered(unsigned u, unsigned useq, unsigned t) {
  if (u == t) return true;
  if (u == MANY || u >> 5 != t >> 5) return false;
  const std::vector<uint32_t>& s = tl.syncs[t >> 5];
  uint32_t both = 1u << (u & 31) | 1u << (t & 31);
  for (size_t k = useq; k < s.size(); ++k)
    if ((s[k] & both) == both) return true;
  return false;
}

// Are all reads of `c` ordered before thread `t`? (Several readers: each lane must share a
// later __syncwarp with `t`, counted from the latest read, which may refuse a correct order but
// never accept a wrong one.)
bool reads_ordered(const Cell& c, unsigned t) {
  if (c.reader == NONE || c.reader == t) return true;
  if (c.reader != MANY) return ordered(c.reader, c.rseq, t);
  if (c.rwarp != t >> 5) return false;
  for (unsigned l = 0; l < 32; ++l)
    if ((c.rlanes >> l & 1) && !ordered((t & ~31u) | l, c.rseq, t)) return false;
  return true;
}

std::string who(uint16_t u, const char* many) {
  return u == MANY ? std::string(many) : "thread " + emu_thread_coords(u);
}

}  // namespace

// The first line `cmd` prints, or "" (only on the way to an error).
static std::string first_line_of(const std::string& cmd) {
  std::string found;
  if (FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r")) {
    char line[8192];
    if (fgets(line, sizeof line, p)) found = line;
    while (fgets(line, sizeof line, p)) {
    }
    pclose(p);
  }
  while (!found.empty() && (found.back() == '\n' || found.back() == ' ')) found.pop_back();
  return found;
}

// The source line of the kernel code at `pc` (the kernels carry line tables, build/emu.rs), by
// addr2line.
std::string source_of(const void* pc) {
  Dl_info info;
  if (!pc || !dladdr(pc, &info) || !info.dli_fname) return "unknown code";
  std::string exe = info.dli_fname;
  // The return address is one past the call: the access is the instruction before.
  std::string off = hex((uint64_t)pc - (uint64_t)info.dli_fbase - 1);
  // llvm-addr2line where installed: GNU addr2line took 0.9-1.3 s a call on a test binary,
  // llvm's 0.08 s (LLVM 14, tests/emu_runtime.rs' binary).
  std::string line;
  for (const char* tool : {"llvm-addr2line", "addr2line"}) {
    line = first_line_of(std::string(tool) + " -i -e '" + exe + "' " + off);
    if (!line.empty()) break;
  }
  if (line.empty() || line[0] == '?') return exe + "+" + off;
  line = line.substr(line.rfind('/') == std::string::npos ? 0 : line.rfind('/') + 1);
  return line.substr(0, line.find(" (discriminator"));
}

namespace {

std::string where(uint64_t addr, uint64_t n, const void* pc) {
  std::string code = source_of(pc), what = shared_var_name(addr - emu_shared.lo);
  if (what.empty()) what = "thread-local offset " + hex(addr - emu_shared.lo) + " (shared memory)";
  return emu_bytes(n) + " at " + what + ", in " + code;
}

[[noreturn]] void hazard(const char* kind, const std::string& what, const std::string& other) {
  emu_fail_current(std::string("shared-memory race (") + kind + "): " + what + other +
                   " in the same barrier interval, with no __syncthreads (or __syncwarp naming "
                   "both lanes) between them");
}
}  // namespace

void shared_block_begin(unsigned warps) {
  if (!tl.ready) prepare();
  // The counter nears its end only after billions of barriers on this host thread.
  if (tl.epoch > 0xf0000000u) {
    tl.cells.assign(tl.cells.size(), Cell{});
    tl.epoch = 0;
  }
  tl.first = ++tl.epoch;
  tl.syncs.resize(warps);
  for (auto& s : tl.syncs) s.clear();
}

void shared_barrier() {
  ++tl.epoch;
  for (auto& s : tl.syncs) s.clear();
}

void shared_syncwarp(unsigned warp, unsigned mask) { tl.syncs[warp].push_back(mask); }

uint32_t shared_interval() { return tl.epoch; }

bool shared_warp_synced(unsigned warp) { return !tl.syncs[warp].empty(); }

void shared_access(uint64_t addr, uint64_t n, bool write, bool atomic, const void* pc) {
  if (addr - tl.skip < sizeof(emu_cur)) return;
  uint64_t off = addr - emu_shared.lo;
  if (n > emu_shared.size - off) n = emu_shared.size - off;
  if (!shared_var_within(off, n))
    emu_fail_current("a " + std::to_string(n) + "-byte " + (write ? "write" : "read") + " at " +
                     source_of(pc) + " " + shared_var_outside(off, n));
  unsigned t = emu_thread_linear(), w = t >> 5, lane = t & 31;
  uint32_t seq = (uint32_t)tl.syncs[w].size();
  for (uint64_t i = 0; i < n; ++i) {
    Cell& c = tl.cells[off + i];
    if (c.epoch != tl.epoch) {
      uint32_t written = c.written;
      c = Cell{};
      c.epoch = tl.epoch;
      c.written = written;
      c.writer = c.reader = c.rwarp = NONE;
    }
    bool writer_ordered =
        c.writer == NONE || (atomic && c.atomic) || ordered(c.writer, c.wseq, t);
    if (!write) {
      if (c.written < tl.first)
        emu_fail_current("reads " + where(addr, n, pc) +
                         ", which no thread of its block has written (on a GPU: whatever an "
                         "earlier block left there)");
      if (!writer_ordered)
        hazard("read after write", "reads " + where(addr, n, pc),
               ", that " + who(c.writer, "several threads (atomics)") + " wrote");
      if (atomic) continue;  // an atomic's read is its write's business
      if (c.reader == NONE) {
        c.reader = (uint16_t)t;
        c.rwarp = (uint16_t)w;
        c.rseq = seq;
      } else {
        if (c.reader != t) c.reader = MANY;
        if (c.rwarp != w) c.rwarp = MANY;
        if (seq > c.rseq) c.rseq = seq;
      }
      c.rlanes |= 1u << lane;
    } else {
      if (!writer_ordered)
        hazard("write after write", "writes " + where(addr, n, pc),
               ", that " + who(c.writer, "several threads (atomics)") + " also wrote");
      if (!reads_ordered(c, t))
        hazard("write after read", "writes " + where(addr, n, pc),
               ", that " + who(c.reader, "other threads") + " read");
      bool join = atomic && c.atomic && c.writer != NONE && c.writer != t;
      c.writer = join ? MANY : (uint16_t)t;
      c.wseq = seq;
      c.atomic = atomic;
      c.written = tl.epoch;
    }
  }
}
