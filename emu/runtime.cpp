// Kernel launches of the emulated device: blocks on a pool of host threads, the threads of a
// block as cooperative fibers (fiber.cpp) on one host thread, switching only at __syncthreads,
// warp collectives and exit.
//
// Scheduling: the blocks of a launch are taken in a seeded pseudo-random order (an affine
// permutation of the block indices); within a block the next fiber to run is drawn at random
// from the runnable ones, so every barrier release resumes the threads in a fresh order. Seeds:
// SIMCLR_EMU_SEED (default 1) mixed with the kernel name and the block index, so one seed gives
// one schedule per block whatever the host threads do. SIMCLR_EMU_THREADS sets the pool size.
//
// Barriers: a thread that exits does NOT count as arrived. A __syncthreads reached after some
// thread of the block exited, or a thread exiting while others wait at one, is an error: CUDA
// leaves a barrier not reached by every thread of the block undefined.
//
// Warp collectives (shuffles, votes, __syncwarp): each lane must be named by its mask, the mask
// must name only existing lanes that have not exited, and all lanes of one collective must pass
// the same mask; a shuffle reading a lane outside the mask is an error. A collective completes
// when every lane of its mask has arrived.
//
// Any error stops the launch: the failing fiber never resumes, the other blocks are skipped, and
// the message names the kernel, the block, the thread and what went wrong.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cuda_emu_abi.h"
#include "emu.h"
#include "fiber.h"

extern "C" {
__thread const EmuThreadState* emu_cur = nullptr;
}
__thread EmuRange emu_stack = {0, 0};

namespace {

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t env_seed() {
  static uint64_t s = [] {
    const char* e = getenv("SIMCLR_EMU_SEED");
    return e && *e ? strtoull(e, nullptr, 0) : 1ull;
  }();
  return s;
}

enum State { NOT_STARTED, RUNNABLE, AT_BARRIER, IN_WARP, EXITED };

const char* coll_name(int kind) {
  switch (kind) {
    case EMU_SHFL_IDX: return "__shfl_sync";
    case EMU_SHFL_XOR: return "__shfl_xor_sync";
    case EMU_SHFL_DOWN: return "__shfl_down_sync";
    case EMU_SHFL_UP: return "__shfl_up_sync";
    case EMU_BALLOT: return "__ballot_sync";
    case EMU_ANY: return "__any_sync";
    case EMU_ALL: return "__all_sync";
    default: return "__syncwarp";
  }
}

struct Thread {
  EmuThreadState st;  // first: emu_cur points here
  FiberCtx ctx;
  void* stack = nullptr;
  size_t stack_size = 0;
  State state = NOT_STARTED;
  unsigned linear = 0;
};

struct Coll {
  unsigned mask = 0, arrived = 0;
  int kind = 0;
  uint64_t vals[32];
  int args[32], widths[32];
};

struct Warp {
  std::vector<Coll> open;
  uint64_t res[32];
  unsigned present = 0, exited = 0;
};

struct Launch {
  const char* name;
  void (*thunk)(void**);
  void** params;
  dim3 grid, block;
  uint64_t nblocks, perm_a, perm_c;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::string error;
  // Stores its blocks left unpublished (no __threadfence after them), published at its end.
  EmuRanges pending;
  // The stream operation of the launching thread; its blocks' accesses belong to it.
  const EmuStreamOp* op = nullptr;
  // Helpers of the pool still working on this launch.
  std::mutex done_m;
  std::condition_variable done_cv;
  int helpers = 0;
};

struct Block {
  Launch* L = nullptr;
  uint3 bid;
  unsigned nthreads = 0;
  std::vector<Thread> threads;
  std::vector<Warp> warps;
  std::vector<unsigned> runnable;
  uint64_t rng = 0;
  FiberCtx sched;
  Thread* cur = nullptr;
  unsigned exited = 0, at_barrier = 0;
  bool failed = false;
  std::string error;
};

thread_local Block* tl_block = nullptr;

std::string coords(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}
std::string hexmask(unsigned m) {
  char b[16];
  snprintf(b, sizeof b, "0x%08x", m);
  return b;
}
std::string where(Block& b, Thread* t) {
  std::string s = std::string("kernel ") + b.L->name + " block " + coords(b.bid);
  if (t) s += " thread " + coords(t->st.tid);
  return s;
}

// Back to the scheduler for good.
[[noreturn]] void fail_in_fiber(Block& b, const std::string& msg) {
  if (!b.failed) {
    b.failed = true;
    b.error = where(b, b.cur) + ": " + msg;
  }
  // Nothing resumes the failing fiber: its context is saved into a scratch slot.
  static thread_local FiberCtx dead;
  fiber_switch(&dead, &b.sched);
  __builtin_unreachable();
}

void yield_to_scheduler(Block& b) { fiber_switch(&b.cur->ctx, &b.sched); }

void make_runnable(Block& b, Thread& t) {
  t.state = RUNNABLE;
  b.runnable.push_back(t.linear);
}

void fiber_main(void* arg) {
  Thread* t = (Thread*)arg;
  Block& b = *tl_block;
  b.L->thunk(b.L->params);
  // Exit.
  t->state = EXITED;
  b.exited++;
  Warp& w = b.warps[t->linear >> 5];
  unsigned lane = t->linear & 31;
  w.exited |= 1u << lane;
  if (b.at_barrier > 0)
    fail_in_fiber(b, "exits while " + std::to_string(b.at_barrier) +
                         " threads of its block wait at __syncthreads (a barrier not reached by "
                         "every thread is undefined in CUDA)");
  for (Coll& c : w.open)
    if (c.mask >> lane & 1)
      fail_in_fiber(b, "exits while lanes " + hexmask(c.arrived) + " of its warp wait in " +
                           coll_name(c.kind) + " with mask " + hexmask(c.mask) +
                           ", which names it");
  fiber_switch(&t->ctx, &b.sched);
  __builtin_unreachable();
}

std::string deadlock(Block& b) {
  std::string s = "deadlock: no thread can run;";
  if (b.at_barrier)
    s += " " + std::to_string(b.at_barrier) + " of " + std::to_string(b.nthreads) +
         " threads wait at __syncthreads (first: thread ";
  bool first = true;
  for (Thread& t : b.threads)
    if (t.state == AT_BARRIER && first) {
      s += coords(t.st.tid) + ");";
      first = false;
    }
  for (size_t wi = 0; wi < b.warps.size(); ++wi)
    for (Coll& c : b.warps[wi].open)
      s += " warp " + std::to_string(wi) + ": lanes " + hexmask(c.arrived) + " wait in " +
           coll_name(c.kind) + " with mask " + hexmask(c.mask) + " for lanes " +
           hexmask(c.mask & ~c.arrived) + ";";
  return s;
}

void run_block(Launch& L, uint64_t index) {
  thread_local Block blk;
  Block& b = blk;
  b.L = &L;
  b.bid = {(unsigned)(index % L.grid.x), (unsigned)(index / L.grid.x % L.grid.y),
           (unsigned)(index / L.grid.x / L.grid.y)};
  b.nthreads = L.block.x * L.block.y * L.block.z;
  b.threads.assign(b.nthreads, Thread());
  unsigned nw = (b.nthreads + 31) / 32;
  b.warps.assign(nw, Warp());
  for (unsigned w = 0; w < nw; ++w) {
    unsigned n = b.nthreads - w * 32;
    b.warps[w].present = n >= 32 ? 0xffffffffu : ((1u << n) - 1);
  }
  b.runnable.clear();
  for (unsigned i = 0; i < b.nthreads; ++i) {
    Thread& t = b.threads[i];
    t.linear = i;
    t.st.tid = {i % L.block.x, i / L.block.x % L.block.y, i / L.block.x / L.block.y};
    t.st.bid = b.bid;
    t.st.bdim = L.block;
    t.st.gdim = L.grid;
    b.runnable.push_back(i);
  }
  uint64_t h = env_seed() * 0x100000001b3ull;
  for (const char* c = L.name; *c; ++c) h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
  b.rng = h ^ (index * 0x9e3779b97f4a7c15ull);
  b.exited = b.at_barrier = 0;
  b.failed = false;
  b.error.clear();
  tl_block = &b;
  shared_block_begin(nw);
  const EmuStreamOp* outer = emu_op_current();
  emu_op_set(L.op);
  mem_block_tag((uint8_t)(1 + index % 127), nullptr);
  while (!b.runnable.empty() && !b.failed && !L.failed.load(std::memory_order_relaxed)) {
    size_t k = splitmix(b.rng) % b.runnable.size();
    unsigned i = b.runnable[k];
    b.runnable[k] = b.runnable.back();
    b.runnable.pop_back();
    Thread& t = b.threads[i];
    if (t.state == NOT_STARTED) {
      t.stack = stack_get(&t.stack_size);
      fiber_make(&t.ctx, t.stack, t.stack_size, fiber_main, &t);
    }
    t.state = RUNNABLE;
    b.cur = &t;
    emu_cur = &t.st;
    emu_stack = {(uint64_t)t.stack, t.stack_size};
    mem_thread_running(t.linear);
    fiber_switch(&b.sched, &t.ctx);
    emu_cur = nullptr;
    emu_stack = {0, 0};
    if (t.state == EXITED && !b.failed) {
      stack_put(t.stack);
      t.stack = nullptr;
    }
  }
  if (!b.failed && b.exited < b.nthreads && !L.failed.load()) {
    b.failed = true;
    b.error = where(b, nullptr) + ": " + deadlock(b);
  }
  // Abandoned fibers (after an error) give their stacks back; nothing on them needs unwinding.
  for (Thread& t : b.threads)
    if (t.stack) {
      stack_put(t.stack);
      t.stack = nullptr;
    }
  tl_block = nullptr;
  emu_op_set(outer);
  std::lock_guard<std::mutex> g(L.m);
  mem_block_tag(0, &L.pending);
  if (b.failed && !L.failed.exchange(true)) L.error = b.error;
}

void run_blocks(Launch& L) {
  for (;;) {
    if (L.failed.load(std::memory_order_relaxed)) return;
    uint64_t i = L.next.fetch_add(1);
    if (i >= L.nblocks) return;
    uint64_t idx = (uint64_t)(((unsigned __int128)L.perm_a * i + L.perm_c) % L.nblocks);
    run_block(L, idx);
  }
}

// Host threads that help the launching thread run blocks.
struct Pool {
  std::mutex m;
  std::condition_variable cv;
  std::deque<Launch*> q;
  unsigned size = 0;
  Pool() {
    unsigned hw = std::thread::hardware_concurrency();
    size = hw > 1 ? (hw > 8 ? 8 : hw) - 1 : 0;
    if (const char* e = getenv("SIMCLR_EMU_THREADS")) {
      long v = atol(e);
      if (v >= 1) size = (unsigned)(v - 1);
    }
    for (unsigned i = 0; i < size; ++i) std::thread([this] { work(); }).detach();
  }
  void work() {
    for (;;) {
      Launch* L;
      {
        std::unique_lock<std::mutex> g(m);
        cv.wait(g, [&] { return !q.empty(); });
        L = q.front();
        q.pop_front();
      }
      run_blocks(*L);
      std::lock_guard<std::mutex> g(L->done_m);
      if (--L->helpers == 0) L->done_cv.notify_all();
    }
  }
};

Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

std::string check_config(dim3 g, dim3 b) {
  if (!g.x || !g.y || !g.z || !b.x || !b.y || !b.z) return "a grid or block dimension is zero";
  if ((uint64_t)b.x * b.y * b.z > 1024) return "more than 1024 threads per block";
  if (b.x > 1024 || b.y > 1024 || b.z > 64) return "block dimensions exceed (1024, 1024, 64)";
  if (g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535)
    return "grid dimensions exceed (2^31-1, 65535, 65535)";
  return "";
}

}  // namespace

char* emu_strdup(const std::string& s) { return strdup(s.c_str()); }

bool emu_in_kernel() { return tl_block && tl_block->cur; }

unsigned emu_thread_linear() { return tl_block->cur->linear; }

std::string emu_thread_coords(unsigned linear) {
  return coords(tl_block->threads[linear].st.tid);
}

std::string emu_stack_owner(uint64_t addr) {
  if (!emu_in_kernel()) return "";
  for (Thread& t : tl_block->threads)
    if (t.stack && addr - (uint64_t)t.stack < t.stack_size) return "thread " + coords(t.st.tid);
  return "";
}

void emu_fail_current(const std::string& msg) {
  // Only kernels (running in fibers) reach the instrumentation hooks.
  if (!emu_in_kernel()) {
    fprintf(stderr, "simclr emulated device: %s (outside a kernel)\n", msg.c_str());
    abort();
  }
  fail_in_fiber(*tl_block, msg);
}

extern "C" void emu_syncthreads(void) {
  Block& b = *tl_block;
  Thread* t = b.cur;
  if (b.exited > 0)
    fail_in_fiber(b, "reaches __syncthreads after " + std::to_string(b.exited) +
                         " threads of its block exited (a barrier not reached by every thread "
                         "is undefined in CUDA)");
  t->state = AT_BARRIER;
  if (++b.at_barrier == b.nthreads) {
    b.at_barrier = 0;
    shared_barrier();
    for (Thread& o : b.threads)
      if (o.state == AT_BARRIER) make_runnable(b, o);
  }
  yield_to_scheduler(b);
  b.cur = t;
}

extern "C" uint64_t emu_warp(int kind, unsigned mask, uint64_t value, int arg, int width) {
  Block& b = *tl_block;
  Thread* t = b.cur;
  Warp& w = b.warps[t->linear >> 5];
  unsigned lane = t->linear & 31;
  const char* name = coll_name(kind);
  if (!(mask >> lane & 1))
    fail_in_fiber(b, std::string(name) + " with mask " + hexmask(mask) +
                         ", which does not name the calling lane " + std::to_string(lane));
  if (mask & ~w.present)
    fail_in_fiber(b, std::string(name) + " with mask " + hexmask(mask) + ", which names lanes " +
                         hexmask(mask & ~w.present) + " that do not exist (the block has " +
                         std::to_string(b.nthreads) + " threads)");
  if (mask & w.exited)
    fail_in_fiber(b, std::string(name) + " with mask " + hexmask(mask) + ", which names lanes " +
                         hexmask(mask & w.exited) + " that have exited");
  if (width < 1 || width > 32 || (width & (width - 1)))
    fail_in_fiber(b, std::string(name) + " with width " + std::to_string(width) +
                         " (a power of two up to 32)");
  Coll* c = nullptr;
  for (Coll& o : w.open)
    if (o.mask & mask) {
      if (o.mask != mask)
        fail_in_fiber(b, std::string(name) + " with mask " + hexmask(mask) + " while lanes " +
                             hexmask(o.arrived) + " of its warp wait in " + coll_name(o.kind) +
                             " with mask " + hexmask(o.mask) + " (lanes disagree on the mask)");
      if (o.kind != kind)
        fail_in_fiber(b, std::string(name) + " while lanes " + hexmask(o.arrived) +
                             " of its warp wait in " + coll_name(o.kind) +
                             " with the same mask " + hexmask(mask));
      c = &o;
    }
  if (!c) {
    w.open.emplace_back();
    c = &w.open.back();
    c->mask = mask;
    c->kind = kind;
  }
  c->vals[lane] = value;
  c->args[lane] = arg;
  c->widths[lane] = width;
  c->arrived |= 1u << lane;
  if (c->arrived == mask) {
    uint64_t ballot = 0;
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l & 1) && c->vals[l]) ballot |= 1ull << l;
    for (unsigned l = 0; l < 32; ++l) {
      if (!(mask >> l & 1)) continue;
      unsigned wd = (unsigned)c->widths[l], base = l & ~(wd - 1), src = l;
      int a = c->args[l];
      switch (kind) {
        case EMU_SHFL_IDX: src = base + ((unsigned)a & (wd - 1)); break;
        case EMU_SHFL_XOR: src = l ^ (unsigned)a; if (src >= base + wd || src < base) src = l; break;
        case EMU_SHFL_DOWN: src = (l - base) + (unsigned)a < wd ? l + (unsigned)a : l; break;
        case EMU_SHFL_UP: src = (l - base) >= (unsigned)a ? l - (unsigned)a : l; break;
        default: break;
      }
      if (kind <= EMU_SHFL_UP) {
        if (src > 31 || !(mask >> src & 1)) {
          Thread* reader = &b.threads[(t->linear & ~31u) + l];
          b.cur = reader;
          fail_in_fiber(b, std::string(name) + " with mask " + hexmask(mask) + " reads lane " +
                               std::to_string(src) + ", which the mask does not name");
        }
        w.res[l] = c->vals[src];
      } else if (kind == EMU_BALLOT) {
        w.res[l] = ballot;
      } else if (kind == EMU_ANY) {
        w.res[l] = ballot != 0;
      } else if (kind == EMU_ALL) {
        w.res[l] = ballot == mask;
      } else {
        w.res[l] = 0;
      }
    }
    unsigned warp0 = t->linear & ~31u;
    if (kind == EMU_SYNCWARP) shared_syncwarp(t->linear >> 5, mask);
    w.open.erase(w.open.begin() + (c - w.open.data()));
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l & 1) && l != lane) make_runnable(b, b.threads[warp0 + l]);
    make_runnable(b, *t);
  } else {
    t->state = IN_WARP;
  }
  yield_to_scheduler(b);
  b.cur = t;
  return w.res[lane];
}

// ---- C ABI for the Rust side ----

extern "C" int emu_launch(const char* name, void (*thunk)(void**), const unsigned grid[3],
                          const unsigned block[3], unsigned shared_bytes, void** params,
                          char** err) {
  dim3 g{grid[0], grid[1], grid[2]}, bl{block[0], block[1], block[2]};
  std::string bad = check_config(g, bl);
  if (!bad.empty()) {
    *err = emu_strdup(std::string("kernel ") + name + ": launch with grid " + coords(g) +
                      " and block " + coords(bl) + ": " + bad);
    return EMU_INVALID_VALUE;
  }
  if (shared_bytes > 0) {
    *err = emu_strdup(std::string("kernel ") + name + ": " + std::to_string(shared_bytes) +
                      " bytes of dynamic shared memory requested; the emulated kernels have none");
    return EMU_INVALID_VALUE;
  }
  Launch L;
  L.name = name;
  L.thunk = thunk;
  L.params = params;
  L.grid = g;
  L.block = bl;
  L.nblocks = (uint64_t)g.x * g.y * g.z;
  L.op = emu_op_current();
  uint64_t s = env_seed() ^ 0x51ed270b27a3f5ull;
  for (const char* c = name; *c; ++c) s = (s ^ (uint8_t)*c) * 0x100000001b3ull;
  // An affine permutation i -> (a·i + c) mod n with gcd(a, n) = 1.
  auto gcd = [](uint64_t x, uint64_t y) {
    while (y) {
      uint64_t r = x % y;
      x = y;
      y = r;
    }
    return x;
  };
  do {
    L.perm_a = splitmix(s) % L.nblocks + 1;
  } while (gcd(L.perm_a, L.nblocks) != 1);
  L.perm_c = splitmix(s) % L.nblocks;

  Pool& p = pool();
  unsigned helpers = L.nblocks > 1 ? (unsigned)std::min<uint64_t>(p.size, L.nblocks - 1) : 0;
  if (helpers) {
    L.helpers = (int)helpers;
    std::lock_guard<std::mutex> gq(p.m);
    for (unsigned i = 0; i < helpers; ++i) p.q.push_back(&L);
    p.cv.notify_all();
  }
  run_blocks(L);
  if (helpers) {
    // Withdraw the requests no helper took yet, then wait for the others.
    {
      std::lock_guard<std::mutex> gq(p.m);
      int withdrawn = 0;
      for (auto it = p.q.begin(); it != p.q.end();)
        if (*it == &L) {
          it = p.q.erase(it);
          ++withdrawn;
        } else {
          ++it;
        }
      std::lock_guard<std::mutex> gd(L.done_m);
      L.helpers -= withdrawn;
    }
    std::unique_lock<std::mutex> gd(L.done_m);
    L.done_cv.wait(gd, [&] { return L.helpers == 0; });
  }
  mem_publish(L.pending);
  if (L.failed.load()) {
    *err = emu_strdup(L.error);
    return EMU_LAUNCH_FAILED;
  }
  return EMU_OK;
}

extern "C" void emu_string_free(char* s) { free(s); }
