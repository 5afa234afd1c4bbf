// The `__shared__` variables of the emulated kernels, by their place in the static TLS block
// (the same in every host thread): each declaration registers its names once per process
// (build/shared_rewrite.rs emits the calls), so an access can be checked to stay inside one
// variable (a GPU would read or overwrite the neighbouring one) and messages can name it.
#include <stdint.h>
#include <stdio.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_emu_abi.h"
#include "emu.h"

namespace {
struct Var {
  uint64_t off, size;
  std::string what;  // "name (file:line)"
};

struct Registry {
  std::mutex m;
  uint64_t size = 0;
  // The variable (index + 1 into vars) holding each byte of the TLS block; 0: none.
  std::unique_ptr<std::atomic<uint16_t>[]> var_of;
  std::vector<Var> vars;
};

Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}
}  // namespace

void shared_vars_init(uint64_t tls_size) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  if (r.var_of) return;
  r.size = tls_size;
  r.var_of.reset(new std::atomic<uint16_t>[tls_size ? tls_size : 1]());
}

extern "C" bool emu_shared_declared(const void* p, uint64_t size, const char* what) {
  Registry& r = registry();
  uint64_t off = (uint64_t)p - emu_shared.lo;
  std::lock_guard<std::mutex> g(r.m);
  if (!r.var_of || off >= r.size || size > r.size - off || r.vars.size() >= 0xfffe) return false;
  r.vars.push_back({off, size, what});
  for (uint64_t i = 0; i < size; ++i)
    r.var_of[off + i].store((uint16_t)r.vars.size(), std::memory_order_relaxed);
  return true;
}

bool shared_var_within(uint64_t off, uint64_t n) {
  Registry& r = registry();
  uint16_t id = r.var_of[off].load(std::memory_order_relaxed);
  return id && r.var_of[off + n - 1].load(std::memory_order_relaxed) == id;
}

std::string shared_var_outside(uint64_t off, uint64_t n) {
  Registry& r = registry();
  uint16_t id = r.var_of[off].load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(r.m);
  if (id) {
    const Var& v = r.vars[id - 1];
    return "runs " + emu_bytes(off + n - (v.off + v.size)) + " past the end of the " +
           emu_bytes(v.size) + " of __shared__ " + v.what;
  }
  // The nearest variable before the access, else after it.
  const Var* below = nullptr;
  const Var* above = nullptr;
  for (const Var& v : r.vars) {
    if (v.off + v.size <= off && (!below || v.off > below->off)) below = &v;
    if (v.off >= off + n && (!above || v.off < above->off)) above = &v;
  }
  uint64_t past = below ? off - (below->off + below->size) : UINT64_MAX;
  uint64_t before = above ? above->off - (off + n) : UINT64_MAX;
  if (past < 4096 && past <= before)
    return "starts " + emu_bytes(past) + " past the end of the " + emu_bytes(below->size) +
           " of __shared__ " + below->what;
  if (before < 4096)
    return "ends " + emu_bytes(before) + " before the start of __shared__ " + above->what;
  return "touches no __shared__ variable";
}

std::string shared_var_name(uint64_t off) {
  Registry& r = registry();
  uint16_t id = off < r.size ? r.var_of[off].load(std::memory_order_relaxed) : 0;
  std::lock_guard<std::mutex> g(r.m);
  if (!id) return "";
  const Var& v = r.vars[id - 1];
  return "byte " + std::to_string(off - v.off) + " of __shared__ " + v.what;
}
