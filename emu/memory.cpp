// Checked device memory of the emulated devices (like AddressSanitizer + compute-sanitizer's
// initcheck). One arena is mapped once (MAP_NORESERVE): DEVICE_COUNT equal regions, plus a shadow
// byte per arena byte:
//   0 = not allocated (red zones, never used), 1 = allocated and never written, 2 = written,
//   3 = freed, 0x80 | tag = written in the running launch by the block of that tag (1..127) and
//   not yet published to the other blocks (see "Between the blocks of one launch" below).
// Allocations are 256-byte aligned with at least 256 bytes of red zone after each (and before
// the first). Freed ranges wait in a quarantine (FIFO, 256 MiB per device) before their addresses
// can be handed out again, so a use after free is caught. Kernels' loads and stores reach
// mem_access through GCC's kernel-address instrumentation hooks (__asan_*_noabort, below).
// Pool counters mirror cuMemPool's: used (requested bytes rounded to 256) and its high-water
// mark, reserved and its high-water mark. An allocation fails only when used would pass the
// device's total, so the emulated pool keeps nothing back: reserved is used, and
// cuMemGetInfo's free is the total less it, as on a GPU (free + reserved is what we may use).
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "cuda_emu_abi.h"
#include "emu.h"

namespace {
const uint64_t ALIGN = 256, RED = 256, QUARANTINE = 256ull << 20, GRANULE = 256;
enum : uint8_t { S_NONE = 0, S_UNWRITTEN = 1, S_WRITTEN = 2, S_FREED = 3, S_PENDING = 0x80 };

// Holds data: allocated and not freed (written, never written, or pending).
inline bool live_byte(uint8_t v) { return v == S_UNWRITTEN || v == S_WRITTEN || (v & S_PENDING); }

struct Device {
  std::mutex m;
  uint64_t base = 0, span = 0;          // region [base, base + span)
  std::map<uint64_t, uint64_t> free_;   // offset -> length, coalesced
  std::map<uint64_t, uint64_t> live;    // address -> requested size
  std::map<uint64_t, uint64_t> freed;   // address -> size, until the range is reused
  std::deque<std::pair<uint64_t, uint64_t>> quarantine;  // (chunk offset, chunk length)
  uint64_t quarantined = 0;
  std::map<uint64_t, uint64_t> chunk;   // address -> chunk length (with its red zone)
  uint64_t used = 0, used_high = 0, reserved_high = 0;
};

struct Arena {
  int count = 0;
  uint64_t total = 0;  // bytes each device reports
  uint64_t base = 0, size = 0;
  uint8_t* shadow = nullptr;
  uint64_t* stamps = nullptr;
  uint32_t* owners = nullptr;  // per byte: the stamp of its last store in a kernel
  Device* dev = nullptr;
  std::string error;
  // The loaded image (code, constants, static data) of the object holding the kernels:
  // `__constant__` tables and function-local statics live there.
  uint64_t image_lo = 0, image_size = 0;
};

// [lo, hi) spanned by the loadable segments of the object that holds `arena`'s code.
int find_image(dl_phdr_info* info, size_t, void* out) {
  uint64_t anchor = (uint64_t)&find_image, lo = UINT64_MAX, hi = 0;
  bool mine = false;
  for (int k = 0; k < info->dlpi_phnum; ++k) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[k];
    if (ph.p_type != PT_LOAD) continue;
    uint64_t a = info->dlpi_addr + ph.p_vaddr;
    lo = std::min(lo, a);
    hi = std::max(hi, a + ph.p_memsz);
    mine |= anchor - a < ph.p_memsz;
  }
  if (!mine) return 0;
  ((uint64_t*)out)[0] = lo;
  ((uint64_t*)out)[1] = hi - lo;
  return 1;
}

Arena& arena() {
  static Arena* a = [] {
    Arena* a = new Arena();
    a->count = 4;
    double gib = 16;
    if (const char* s = getenv("SIMCLR_EMU_MEMORY_GIB")) {
      double v = atof(s);
      if (v > 0) gib = v;
    }
    a->total = (uint64_t)(gib * (double)(1ull << 30)) & ~(ALIGN - 1);
    uint64_t span = (a->total + a->total / 4 + (64ull << 20) + 0xfffff) & ~0xfffffull;
    a->size = span * a->count;
    void* m = mmap(nullptr, a->size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void* s = mmap(nullptr, a->size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED || s == MAP_FAILED) {
      a->error = "could not map the emulated devices' memory (" + std::to_string(a->size >> 30) +
                 " GiB of address space, twice); lower SIMCLR_EMU_MEMORY_GIB";
      a->size = 0;
      a->count = 0;
      return a;
    }
    a->base = (uint64_t)m;
    a->shadow = (uint8_t*)s;
    // Two stream-order stamps (last write, last read) per 256-byte granule.
    void* st = mmap(nullptr, a->size / GRANULE * 16, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    a->stamps = st == MAP_FAILED ? nullptr : (uint64_t*)st;
    void* ow = mmap(nullptr, a->size * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    a->owners = ow == MAP_FAILED ? nullptr : (uint32_t*)ow;
    if (!a->owners)
      fprintf(stderr,
              "simclr emulated device: no address space for the store stamps; races between "
              "the threads of a block in device memory are not checked\n");
    uint64_t image[2] = {0, 0};
    dl_iterate_phdr(find_image, image);
    a->image_lo = image[0];
    a->image_size = image[1];
    a->dev = new Device[a->count];
    for (int i = 0; i < a->count; ++i) {
      a->dev[i].base = a->base + span * i;
      a->dev[i].span = span;
      a->dev[i].free_[0] = span;
    }
    return a;
  }();
  return *a;
}

uint8_t* shadow_of(uint64_t addr) { return arena().shadow + (addr - arena().base); }



// Where `addr` lies relative to the allocations of its device (for messages). Lock held.
std::string describe(Device& d, uint64_t addr, uint64_t n) {
  auto alloc_name = [](uint64_t base, uint64_t size) {
    return "a " + std::to_string(size) + "-byte allocation at " + hex(base);
  };
  auto f = d.freed.upper_bound(addr);
  if (f != d.freed.begin()) {
    --f;
    if (addr < f->first + (f->second ? f->second : 1)) {
      return "use after free: offset " + std::to_string(addr - f->first) + " of freed " +
             alloc_name(f->first, f->second).substr(2);
    }
  }
  auto next = d.live.upper_bound(addr);
  std::string after, before;
  uint64_t dist_after = UINT64_MAX, dist_before = UINT64_MAX;
  if (next != d.live.begin()) {
    auto prev = std::prev(next);
    if (addr < prev->first + prev->second) {
      uint64_t off = addr - prev->first;
      if (addr + n > prev->first + prev->second)
        return "offset " + std::to_string(off) + " runs " +
               std::to_string(addr + n - prev->first - prev->second) + " bytes past the end of " +
               alloc_name(prev->first, prev->second);
      return "offset " + std::to_string(off) + " of " + alloc_name(prev->first, prev->second);
    }
    dist_after = addr - (prev->first + prev->second);
    after = std::to_string(dist_after) + " bytes past the end of " +
            alloc_name(prev->first, prev->second);
  }
  if (next != d.live.end()) {
    dist_before = next->first - addr;
    before = std::to_string(dist_before) + " bytes before the start of " +
             alloc_name(next->first, next->second);
  }
  if (dist_after == UINT64_MAX && dist_before == UINT64_MAX) return "no allocation nearby";
  return dist_after <= dist_before ? after : before;
}

Device* device_at(uint64_t addr) {
  Arena& a = arena();
  if (!a.size || addr - a.base >= a.size) return nullptr;
  return &a.dev[(addr - a.base) / a.dev[0].span];
}

// ---- stream order (emu/README.md "Stream order") ----
// Work runs when it is enqueued, in program order; a GPU only orders work of one stream, and
// work of two streams through events. Each access by a stream operation (its stream, its clock
// on that stream, and the vector clock of what it is ordered after) is checked against the
// granule's last write and last read: one by another stream must be ordered before it.
// A stamp is (stream << 48) | clock; 0 is no access yet.
thread_local const EmuStreamOp* tl_op = nullptr;

bool ordered(uint64_t stamp, const EmuStreamOp& op) {
  uint32_t st = (uint32_t)(stamp >> 48);
  uint64_t clock = stamp & ((1ull << 48) - 1);
  return stamp == 0 || st == op.stream || (st < op.nvc && clock <= op.vc[st]);
}

std::string stream_race(const EmuStreamOp& op, uint64_t addr, uint64_t n, bool write,
                        uint64_t stamp, bool last_write) {
  return std::string("stream order: ") + op.what + " on stream " + std::to_string(op.stream) +
         " (its operation " + std::to_string(op.clock) + ") " + (write ? "writes " : "reads ") +
         std::to_string(n) + " bytes at " + hex(addr) + ", last " +
         (last_write ? "written" : "read") + " by operation " +
         std::to_string(stamp & ((1ull << 48) - 1)) + " of stream " +
         std::to_string(stamp >> 48) +
         ", and no event orders the two: on a GPU they may run at the same time "
         "(record an event after the first, cuStreamWaitEvent before the second)";
}

std::string stream_order(uint64_t addr, uint64_t n, bool write) {
  const EmuStreamOp* op = tl_op;
  Arena& a = arena();
  if (!op || !a.stamps || n == 0) return "";
  uint64_t me = ((uint64_t)op->stream << 48) | op->clock;
  for (uint64_t g = (addr - a.base) / GRANULE; g <= (addr + n - 1 - a.base) / GRANULE; ++g) {
    uint64_t* st = a.stamps + 2 * g;
    uint64_t w = __atomic_load_n(&st[0], __ATOMIC_RELAXED);
    if (!ordered(w, *op)) return stream_race(*op, addr, n, write, w, true);
    if (write) {
      uint64_t r = __atomic_load_n(&st[1], __ATOMIC_RELAXED);
      if (!ordered(r, *op)) return stream_race(*op, addr, n, write, r, false);
      if (w != me) __atomic_store_n(&st[0], me, __ATOMIC_RELAXED);
      if (r) __atomic_store_n(&st[1], 0, __ATOMIC_RELAXED);
    } else if (__atomic_load_n(&st[1], __ATOMIC_RELAXED) != me) {
      __atomic_store_n(&st[1], me, __ATOMIC_RELAXED);
    }
  }
  return "";
}

// ---- between the blocks of one launch (emu/README.md "Between the blocks of one launch") ----
// CUDA orders nothing between the blocks of a launch: a block's store reaches another block only
// through a __threadfence() after it (then, say, an atomic ticket the other block reads). So a
// plain store in a kernel marks its bytes pending with the block's tag; __threadfence() publishes
// the block's pending stores (all of them: fences are cumulative over what the block's barriers
// ordered before, and publishing more can only hide a bug, never report a false one); the end
// of the launch publishes the rest. A read of bytes another block left pending, or a plain store
// over them, is reported. Tags are the block index mod 127 plus one: neighbouring blocks always
// differ; two blocks 127 apart share one and are not told apart.
thread_local uint8_t tl_tag = 0;  // the running block's tag; 0 outside kernels
// The running block's pending ranges (address, length), in store order, merged when adjacent.
thread_local EmuRanges tl_pending;
thread_local size_t tl_merge_at = 4096;  // merge the list when it grows past this

// "4-byte read at 0x…", how every message names an access.
std::string access_at(uint64_t addr, uint64_t n, bool write) {
  return std::to_string(n) + "-byte " + (write ? "write" : "read") + " at " + hex(addr);
}

// The same, with where `addr` lies among its device's allocations.
std::string access_in_allocation(uint64_t addr, uint64_t n, bool write) {
  std::string at = access_at(addr, n, write);
  if (Device* d = device_at(addr)) {
    std::lock_guard<std::mutex> g(d->m);
    at += " (" + describe(*d, addr, 1) + ")";
  }
  return at;
}

// ---- between the threads of one block (emu/README.md "Between the threads of a block") ----
// Bytes pending with the running block's tag were stored in this launch by this block; each
// such store left a stamp (barrier interval << 10 | thread index in the block). A load or store
// by another thread in the same interval, with no __syncthreads between, is a race: a GPU may
// show the load the old bytes, and which of two stores lands is up to it. Two lanes of one warp
// count as ordered once the warp passed a __syncwarp in the interval (CUDA's order needs one
// naming both lanes after the first access; this check assumes it did: it may miss a race,
// never invent one). Intervals are numbered per host thread, 22 bits kept: two stamps of one
// launch alias only if a block runs 4 million barriers. Bytes pending from another block with
// the same tag (127 blocks apart), run on another host thread, can match by chance: that is a
// race between blocks, reported as one between threads.
constexpr uint32_t STAMP_THREAD_BITS = 10, STAMP_INTERVALS = (1u << 22) - 1;
thread_local uint32_t tl_stamp = 0;

unsigned stamp_thread(uint32_t stamp) { return stamp & ((1u << STAMP_THREAD_BITS) - 1); }

bool same_interval_unordered(uint32_t stamp) {
  if (stamp == tl_stamp || (stamp >> STAMP_THREAD_BITS) != (tl_stamp >> STAMP_THREAD_BITS))
    return false;
  unsigned warp = stamp_thread(tl_stamp) >> 5;
  return stamp_thread(stamp) >> 5 != warp || !shared_warp_synced(warp);
}

std::string block_race(uint64_t addr, uint64_t n, bool write, uint32_t stamp) {
  std::string at = access_in_allocation(addr, n, write);
  std::string other = "thread " + emu_thread_coords(stamp_thread(stamp)) + " of this block";
  std::string unordered =
      " in the same barrier interval, with no __syncthreads (or __syncwarp naming both lanes) "
      "between them";
  if (write)
    return "global-memory race (write after write): " + at + " over bytes " + other + " stored" +
           unordered + ": which store lands is up to the GPU";
  return "global-memory race (read after write): " + at + " of bytes " + other + " stored" +
         unordered + ": on a GPU the read may see the bytes before the store";
}

// Sorts and merges ranges (a block's threads store in scheduled, not address, order).
void merge_ranges(EmuRanges& v) {
  std::sort(v.begin(), v.end());
  size_t k = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (k && v[i].first <= v[k - 1].first + v[k - 1].second) {
      uint64_t end = std::max(v[k - 1].first + v[k - 1].second, v[i].first + v[i].second);
      v[k - 1].second = end - v[k - 1].first;
    } else {
      v[k++] = v[i];
    }
  }
  v.resize(k);
}

void note_pending(uint64_t addr, uint64_t n) {
  auto& v = tl_pending;
  if (!v.empty() && v.back().first + v.back().second == addr) {
    v.back().second += n;
    return;
  }
  if (!v.empty() && v.back().first <= addr && addr + n <= v.back().first + v.back().second) return;
  v.emplace_back(addr, n);
  // Stores that revisit addresses (a sum kept in device memory) would grow the list without end.
  if (v.size() > tl_merge_at) {
    merge_ranges(v);
    tl_merge_at = std::max<size_t>(4096, 2 * v.size());
  }
}

std::string unpublished(uint64_t addr, uint64_t n, bool write) {
  uint8_t tag = shadow_of(addr)[0] & ~S_PENDING;
  std::string at = access_in_allocation(addr, n, write);
  std::string who = "another block of this launch (tag " + std::to_string(tag) + ")";
  if (write)
    return at + " over bytes " + who +
           " stored: two blocks store to the same bytes in one launch, and which store lands "
           "last is up to the GPU (use an atomic, or one block per output)";
  return at + " of bytes " + who +
         " stored without a __threadfence() after them: on a GPU they may not be visible to "
         "this block yet (store, __threadfence(), then signal, e.g. with an atomic ticket)";
}

std::string slow_error(uint64_t addr, uint64_t n, bool write) {
  Device* d = device_at(addr);
  std::string what = access_at(addr, n, write);
  if (!d) return what + ": outside device memory";
  std::lock_guard<std::mutex> g(d->m);
  uint8_t* s = shadow_of(addr);
  bool bounds = true;
  uint64_t first_unwritten = n;
  for (uint64_t i = 0; i < n; ++i) {
    if (!live_byte(s[i])) bounds = false;
    if (s[i] == S_UNWRITTEN && first_unwritten == n) first_unwritten = i;
  }
  if (!bounds) return what + ": " + describe(*d, addr, n);
  return what + " of never-written memory (initcheck): " + describe(*d, addr + first_unwritten, 1);
}
}  // namespace

std::string hex(uint64_t v) {
  char b[32];
  snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

std::string emu_bytes(uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

bool mem_in_arena(uint64_t addr) {
  Arena& a = arena();
  return addr - a.base < a.size;
}

std::string mem_access(uint64_t addr, uint64_t n, bool write, bool coherent) {
  Arena& a = arena();
  if (addr - a.base >= a.size) return "";
  if (n == 0) return "";
  if (addr + n - a.base > a.size) return slow_error(addr, n, write);
  uint8_t* s = shadow_of(addr);
  // Outside kernels, and for atomics (coherent at the device's L2), nothing is pending.
  uint8_t mine = tl_tag && !coherent ? (uint8_t)(S_PENDING | tl_tag) : S_WRITTEN;
  uint32_t* own = mine != S_WRITTEN && a.owners ? a.owners + (addr - a.base) : nullptr;
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t v = s[i];
    if (v == mine && own && same_interval_unordered(own[i]))
      return block_race(addr + i, n - i, write, own[i]);
    if (v == S_WRITTEN || v == mine || (write && v == S_UNWRITTEN)) continue;
    if (!(v & S_PENDING)) return slow_error(addr, n, write);
    if (mine != S_WRITTEN) return unpublished(addr + i, n - i, write);
  }
  if (write) {
    memset(s, mine, n);
    if (mine != S_WRITTEN) note_pending(addr, n);
    if (own) std::fill(own, own + n, tl_stamp);
  }
  return stream_order(addr, n, write);
}

// ---- C ABI for the Rust side (src/cuda/emu/ffi.rs) ----

extern "C" int emu_device_count() {
  Arena& a = arena();
  return a.count;
}

extern "C" char* emu_arena_error() {
  Arena& a = arena();
  return a.error.empty() ? nullptr : emu_strdup(a.error);
}

extern "C" int emu_malloc(int dev, uint64_t bytes, uint64_t* out, char** err) {
  Arena& a = arena();
  if (dev < 0 || dev >= a.count) {
    *err = emu_strdup("no emulated device " + std::to_string(dev));
    return EMU_INVALID_DEVICE;
  }
  Device& d = a.dev[dev];
  std::lock_guard<std::mutex> g(d.m);
  uint64_t rounded = (bytes + ALIGN - 1) & ~(ALIGN - 1);
  if (d.used + rounded > a.total) {
    *err = emu_strdup("cannot allocate " + std::to_string(bytes) + " bytes on emulated device " +
                      std::to_string(dev) + ": " + std::to_string(d.used) + " of " +
                      std::to_string(a.total) + " bytes in use");
    return EMU_OUT_OF_MEMORY;
  }
  uint64_t need = rounded + RED;
  auto take = [&]() -> int64_t {
    for (auto it = d.free_.begin(); it != d.free_.end(); ++it) {
      // The chunk starts RED bytes into the free range only at offset 0 (red zone before the
      // first allocation); elsewhere the previous chunk's tail red zone precedes it.
      uint64_t lead = it->first == 0 ? RED : 0;
      if (it->second >= need + lead) {
        uint64_t off = it->first, len = it->second;
        d.free_.erase(it);
        uint64_t start = off + lead;
        if (len > need + lead) d.free_[start + need] = len - need - lead;
        return (int64_t)start;
      }
    }
    return -1;
  };
  int64_t off = take();
  while (off < 0 && !d.quarantine.empty()) {
    // Give quarantined ranges back early rather than fail.
    auto q = d.quarantine.front();
    d.quarantine.pop_front();
    d.quarantined -= q.second;
    d.free_[q.first] = q.second;
    off = take();
  }
  if (off < 0) {
    *err = emu_strdup("cannot place " + std::to_string(bytes) + " bytes on emulated device " +
                      std::to_string(dev) + " (address space fragmented)");
    return EMU_OUT_OF_MEMORY;
  }
  uint64_t addr = d.base + (uint64_t)off;
  // Forget freed records the new chunk overlaps.
  for (auto it = d.freed.lower_bound(addr > d.base + ALIGN * 64 ? addr - ALIGN * 64 : d.base);
       it != d.freed.end() && it->first < addr + need;) {
    if (it->first + it->second > addr) it = d.freed.erase(it);
    else ++it;
  }
  memset(shadow_of(addr), S_UNWRITTEN, bytes);
  memset(shadow_of(addr + bytes), S_NONE, need - bytes);
  // A new allocation starts unordered by nothing (the driver orders reuse of freed memory).
  if (a.stamps) memset(a.stamps + 2 * ((addr - a.base) / GRANULE), 0, need / GRANULE * 16);
  d.live[addr] = bytes;
  d.chunk[addr] = need;
  d.used += rounded;
  if (d.used > d.used_high) d.used_high = d.used;
  if (d.used > d.reserved_high) d.reserved_high = d.used;
  *out = addr;
  return EMU_OK;
}

static void coalesce_insert(Device& d, uint64_t off, uint64_t len) {
  auto it = d.free_.emplace(off, len).first;
  auto nx = std::next(it);
  if (nx != d.free_.end() && it->first + it->second == nx->first) {
    it->second += nx->second;
    d.free_.erase(nx);
  }
  if (it != d.free_.begin()) {
    auto pv = std::prev(it);
    if (pv->first + pv->second == it->first) {
      pv->second += it->second;
      d.free_.erase(it);
    }
  }
}

extern "C" int emu_free(uint64_t ptr, char** err) {
  Device* dp = device_at(ptr);
  if (!dp) {
    *err = emu_strdup("cuMemFree of " + hex(ptr) + ", which is not emulated device memory");
    return EMU_INVALID_VALUE;
  }
  Device& d = *dp;
  std::lock_guard<std::mutex> g(d.m);
  auto it = d.live.find(ptr);
  if (it == d.live.end()) {
    *err = emu_strdup("cuMemFree of " + hex(ptr) + ", which is not a live allocation (" +
                      describe(d, ptr, 1) + ")");
    return EMU_INVALID_VALUE;
  }
  uint64_t bytes = it->second, need = d.chunk[ptr];
  d.live.erase(it);
  d.chunk.erase(ptr);
  d.freed[ptr] = bytes;
  memset(shadow_of(ptr), S_FREED, bytes ? bytes : 1);
  d.used -= (bytes + ALIGN - 1) & ~(ALIGN - 1);
  d.quarantine.emplace_back(ptr - d.base, need);
  d.quarantined += need;
  while (d.quarantined > QUARANTINE) {
    auto q = d.quarantine.front();
    d.quarantine.pop_front();
    d.quarantined -= q.second;
    // Give the pages back to the host (their contents are dead).
    uint64_t lo = (d.base + q.first + 4095) & ~4095ull, hi = (d.base + q.first + q.second) & ~4095ull;
    if (hi > lo) {
      madvise((void*)lo, hi - lo, MADV_DONTNEED);
      if (Arena& a = arena(); a.owners)
        madvise(a.owners + (lo - a.base), (hi - lo) * sizeof(uint32_t), MADV_DONTNEED);
    }
    coalesce_insert(d, q.first, q.second);
  }
  return EMU_OK;
}

// Checks a host-side range access (copies, libraries). mode 0 read, 1 write, 2 device-to-device
// shadow copy (handled by emu_copy_dtod).
extern "C" int emu_check(uint64_t ptr, uint64_t bytes, int write, char** err) {
  if (bytes == 0) return EMU_OK;  // an empty range touches nothing (empty tensors)
  if (!mem_in_arena(ptr)) {
    *err = emu_strdup(access_at(ptr, bytes, write) + ": not emulated device memory");
    return EMU_INVALID_VALUE;
  }
  std::string e = mem_access(ptr, bytes, write != 0);
  if (!e.empty()) {
    *err = emu_strdup(e);
    return EMU_ILLEGAL_ADDRESS;
  }
  return EMU_OK;
}

// Bounds of both ranges (reads of never-written bytes allowed), then the data and the shadow.
extern "C" int emu_copy_dtod(uint64_t dst, uint64_t src, uint64_t bytes, char** err) {
  if (bytes == 0) return EMU_OK;
  for (int k = 0; k < 2; ++k) {
    uint64_t p = k ? dst : src;
    if (!mem_in_arena(p) || !mem_in_arena(p + bytes - 1)) {
      *err = emu_strdup(std::string(k ? "destination " : "source ") + hex(p) +
                        " is not emulated device memory");
      return EMU_INVALID_VALUE;
    }
    uint8_t* s = shadow_of(p);
    for (uint64_t i = 0; i < bytes; ++i)
      if (!live_byte(s[i])) {
        *err = emu_strdup(std::string(k ? "destination: " : "source: ") +
                          slow_error(p, bytes, k == 1));
        return EMU_ILLEGAL_ADDRESS;
      }
  }
  for (int k = 0; k < 2; ++k) {
    std::string e = stream_order(k ? dst : src, bytes, k == 1);
    if (!e.empty()) {
      *err = emu_strdup(e);
      return EMU_ILLEGAL_ADDRESS;
    }
  }
  memmove((void*)dst, (const void*)src, bytes);
  memmove(shadow_of(dst), shadow_of(src), bytes);
  return EMU_OK;
}

extern "C" int emu_device_of(uint64_t ptr) {
  Arena& a = arena();
  if (!a.size || ptr - a.base >= a.size) return -1;
  return (int)((ptr - a.base) / a.dev[0].span);
}

extern "C" void emu_mem_info(int dev, uint64_t* free_bytes, uint64_t* total) {
  Arena& a = arena();
  *total = a.total;
  *free_bytes = 0;
  if (dev < 0 || dev >= a.count) return;
  std::lock_guard<std::mutex> g(a.dev[dev].m);
  *free_bytes = a.total - a.dev[dev].used;
}

// which: 0 used, 1 used high, 2 reserved, 3 reserved high. reset: set the high mark to now.
extern "C" uint64_t emu_pool_counter(int dev, int which, int reset) {
  Arena& a = arena();
  if (dev < 0 || dev >= a.count) return 0;
  Device& d = a.dev[dev];
  std::lock_guard<std::mutex> g(d.m);
  if (reset) {
    if (which == 1) d.used_high = d.used;
    if (which == 3) d.reserved_high = d.used;
    return 0;
  }
  switch (which) {
    case 0: return d.used;
    case 1: return d.used_high;
    case 2: return d.used;
    default: return d.reserved_high;
  }
}

// ---- GCC kernel-address instrumentation hooks (kernels only; see build/emu.rs) ----

// Page-locked host memory (cuMemHostAlloc, src/cuda/driver/host.rs): with unified addressing a
// GPU's kernels may read and write it over the bus, so the emulated ones may too.
static std::mutex pinned_m;
static std::map<uint64_t, uint64_t> pinned;  // address -> bytes

extern "C" void emu_host_pinned(uint64_t p, uint64_t bytes, int live) {
  std::lock_guard<std::mutex> g(pinned_m);
  if (live) pinned[p] = bytes;
  else pinned.erase(p);
}

static bool in_pinned(uint64_t addr, uint64_t n) {
  std::lock_guard<std::mutex> g(pinned_m);
  auto it = pinned.upper_bound(addr);
  if (it == pinned.begin()) return false;
  --it;
  return addr - it->first < it->second && n <= it->second - (addr - it->first);
}

// Whether [addr, addr + n) lies in one pinned allocation (src/cuda/emu/pinned.rs asks).
extern "C" int emu_is_pinned(uint64_t addr, uint64_t n) { return in_pinned(addr, n); }

// An access outside device memory, shared memory, the thread's own stack, its coordinates, the
// kernels' image and pinned host memory: a host pointer, another thread's local variable, null
// or a wild pointer. A GPU fails the launch (CUDA_ERROR_ILLEGAL_ADDRESS); x86 would read or
// write whatever is there, or kill the process.
__attribute__((noinline, cold)) static void outside_device_memory(uint64_t addr, uint64_t n,
                                                                  bool write, const void* pc) {
  if (in_pinned(addr, n)) return;
  std::string what = access_at(addr, n, write) + ", in " + source_of(pc) + ": ";
  std::string owner = emu_stack_owner(addr);
  if (!owner.empty())
    emu_fail_current(what + "the stack (local memory) of " + owner +
                     "; on a GPU a thread's local memory is its own, another thread cannot "
                     "reach it");
  emu_fail_current(what +
                   (addr < 4096 ? "through a null pointer (the address lies in the first page)"
                                : "not device memory (no emulated device's allocation, nor "
                                  "__shared__ or __constant__ data, nor the thread's own stack, "
                                  "nor pinned host memory): a host pointer or a wild one") +
                   "; on a GPU an illegal address (CUDA_ERROR_ILLEGAL_ADDRESS)");
}

// Device memory (the arena); else the thread's own stack (unchecked: private), block-shared
// memory (shared.cpp), the thread's coordinates, the kernels' image (read-only constants) and
// pinned host memory (unchecked); anything else fails. `pc`: the kernel code that made the access, for messages.
static inline void hook(uint64_t addr, uint64_t n, bool write, const void* pc,
                        bool coherent = false) {
  Arena& a = arena();
  if (__builtin_expect(addr - a.base >= a.size, 1)) {
    if (addr - emu_stack.lo < emu_stack.size) return;
    if (addr - emu_shared.lo < emu_shared.size)
      shared_access(addr, n, write, coherent, pc);
    else if (addr - (uint64_t)emu_cur >= sizeof(EmuThreadState) &&
             addr - a.image_lo >= a.image_size)
      outside_device_memory(addr, n, write, pc);
    return;
  }
  std::string e = mem_access(addr, n, write, coherent);
  if (!e.empty()) emu_fail_current(e + ", in " + source_of(pc));
}

#define EMU_PC __builtin_return_address(0)
#define EMU_HOOKS(n)                                                                         \
  extern "C" void __asan_load##n##_noabort(uint64_t p) { hook(p, n, false, EMU_PC); }      \
  extern "C" void __asan_store##n##_noabort(uint64_t p) { hook(p, n, true, EMU_PC); }      \
  extern "C" void __asan_load##n(uint64_t p) { hook(p, n, false, EMU_PC); }                \
  extern "C" void __asan_store##n(uint64_t p) { hook(p, n, true, EMU_PC); }
EMU_HOOKS(1)
EMU_HOOKS(2)
EMU_HOOKS(4)
EMU_HOOKS(8)
EMU_HOOKS(16)
extern "C" void __asan_loadN_noabort(uint64_t p, uint64_t n) { hook(p, n, false, EMU_PC); }
extern "C" void __asan_storeN_noabort(uint64_t p, uint64_t n) { hook(p, n, true, EMU_PC); }
extern "C" void __asan_loadN(uint64_t p, uint64_t n) { hook(p, n, false, EMU_PC); }
extern "C" void __asan_storeN(uint64_t p, uint64_t n) { hook(p, n, true, EMU_PC); }
extern "C" void __asan_handle_no_return() {}

// Atomics in kernels (cuda_emu.h): a read-modify-write must read written bytes. Atomics are
// coherent between blocks: they neither wait for a fence nor leave bytes pending; in shared
// memory they do not race with each other.
extern "C" void emu_check_rmw(const void* p, unsigned bytes) {
  hook((uint64_t)p, bytes, false, EMU_PC, true);
  hook((uint64_t)p, bytes, true, EMU_PC, true);
}

// __threadfence() in a kernel: the block's pending stores become visible to every block.
extern "C" void emu_threadfence(void) {
  merge_ranges(tl_pending);
  mem_publish(tl_pending);
  tl_pending.clear();
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

// A block starts (tag 1..127) or ends (tag 0): an ending block hands its still-pending ranges,
// merged, to `launch` (under the launch's lock, held by the caller), published at its end.
void mem_block_tag(uint8_t tag, EmuRanges* launch) {
  if (launch && !tl_pending.empty()) {
    merge_ranges(tl_pending);
    launch->insert(launch->end(), tl_pending.begin(), tl_pending.end());
  }
  tl_pending.clear();
  tl_merge_at = 4096;
  tl_tag = tag;
}

void mem_thread_running(unsigned linear) {
  tl_stamp = (shared_interval() & STAMP_INTERVALS) << STAMP_THREAD_BITS | linear;
}

// Marks the pending bytes of `ranges` written (published to every block).
void mem_publish(const EmuRanges& ranges) {
  for (auto& r : ranges) {
    uint8_t* s = shadow_of(r.first);
    for (uint64_t i = 0; i < r.second; ++i)
      if (s[i] & S_PENDING) s[i] = S_WRITTEN;
  }
}

// ---- UBSan's alignment check (kernels only, -fsanitize=alignment; see build/emu.rs) ----
// A GPU stops the context on a load or store of device memory that is not aligned to the
// accessed type (CUDA_ERROR_MISALIGNED_ADDRESS); the host would carry on. The layouts below are
// the handler ABI GCC's UBSan calls (libsanitizer's ubsan_handlers.h).

namespace {
struct UbsanLocation {
  const char* file;
  uint32_t line, column;
};
struct UbsanType {
  uint16_t kind, info;
  char name[1];
};
struct UbsanTypeMismatch {
  UbsanLocation loc;
  const UbsanType* type;
  uint8_t log_alignment;
  uint8_t check_kind;
};

void misaligned(const UbsanTypeMismatch* d, uint64_t ptr) {
  uint64_t align = 1ull << d->log_alignment;
  // Host memory (shared arrays, locals) and null pointers are not the device's concern here.
  if (!mem_in_arena(ptr) || (ptr & (align - 1)) == 0) return;
  emu_fail_current("misaligned access (CUDA_ERROR_MISALIGNED_ADDRESS on a GPU): " +
                   std::string(d->type->name) + " at " + hex(ptr) + " needs " +
                   std::to_string(align) + "-byte alignment (" + d->loc.file + ":" +
                   std::to_string(d->loc.line) + ")");
}
}  // namespace

extern "C" void __ubsan_handle_type_mismatch_v1(const UbsanTypeMismatch* d, uint64_t ptr) {
  misaligned(d, ptr);
}
extern "C" void __ubsan_handle_type_mismatch_v1_abort(const UbsanTypeMismatch* d, uint64_t ptr) {
  misaligned(d, ptr);
}

// ---- stream operations (src/cuda/emu/order.rs) ----

extern "C" void emu_op_set(const EmuStreamOp* op) { tl_op = op; }
const EmuStreamOp* emu_op_current() { return tl_op; }

// The current stream operation allocated [ptr, ptr + bytes) (cuMemAllocAsync): the range counts
// as written by it, so another stream must be ordered after the allocation to use it.
extern "C" void emu_op_allocated(uint64_t ptr, uint64_t bytes) { stream_order(ptr, bytes, true); }
