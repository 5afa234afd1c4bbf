// Internal interface between the emulator's runtime files (not seen by kernels or Rust).
// Result codes are CUresult values; messages are malloc'd C strings the Rust side frees with
// emu_string_free.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <string>
#include <utility>
#include <vector>

enum : int {
  EMU_OK = 0,
  EMU_INVALID_VALUE = 1,         // CUDA_ERROR_INVALID_VALUE
  EMU_OUT_OF_MEMORY = 2,         // CUDA_ERROR_OUT_OF_MEMORY
  EMU_INVALID_DEVICE = 101,      // CUDA_ERROR_INVALID_DEVICE
  EMU_NOT_FOUND = 500,           // CUDA_ERROR_NOT_FOUND
  EMU_ILLEGAL_ADDRESS = 700,     // CUDA_ERROR_ILLEGAL_ADDRESS
  EMU_LAUNCH_OUT_OF_RESOURCES = 701,
  EMU_LAUNCH_FAILED = 719,       // CUDA_ERROR_LAUNCH_FAILED
};

// memory.cpp: the device arena and its shadow.
// Checks an access of `n` bytes at `addr`; returns "" when fine, else the problem (without the
// kernel/thread prefix). Stores mark the bytes written (pending, in a kernel: memory.cpp).
// `coherent`: an atomic, which needs no fence between blocks. Addresses outside the arena pass.
std::string mem_access(uint64_t addr, uint64_t n, bool write, bool coherent = false);
bool mem_in_arena(uint64_t addr);
// Byte ranges (address, length) of device memory.
using EmuRanges = std::vector<std::pair<uint64_t, uint64_t>>;
// The running block's tag (1..127; 0 when it ends, handing its pending stores to `launch`,
// whose lock the caller holds), and the publication of a launch's pending stores at its end.
void mem_block_tag(uint8_t tag, EmuRanges* launch);
void mem_publish(const EmuRanges& ranges);
// The emulated thread the runtime resumes (its index in the block), in the block's current
// barrier interval: its stores are stamped with both, for the races between a block's threads.
void mem_thread_running(unsigned linear);

// The stream operation this host thread runs (src/cuda/emu/order.rs owns it): its stream, its
// clock there, the vector clock (indexed by stream) of the work it is ordered after, and what
// it is, for messages. Accesses outside any operation are not order-checked.
struct EmuStreamOp {
  uint32_t stream;
  uint64_t clock;
  const uint64_t* vc;
  uint32_t nvc;
  const char* what;
};
extern "C" void emu_op_set(const EmuStreamOp* op);
const EmuStreamOp* emu_op_current();

// runtime.cpp: the failing emulated thread (or the host call) reports `msg` and stops.
[[noreturn]] void emu_fail_current(const std::string& msg);
bool emu_in_kernel();
char* emu_strdup(const std::string& s);
// memory.cpp: "0x…" and "N byte(s)", for messages.
std::string hex(uint64_t v);
std::string emu_bytes(uint64_t n);

// shared.cpp: block-shared memory (the running host thread's static TLS block, where
// `__shared__` variables live) and its race and initialisation checks. The hooks call
// shared_access for addresses in [lo, lo + size); the runtime reports blocks, barriers and
// __syncwarps.
struct EmuRange {
  uint64_t lo, size;
};
extern __thread EmuRange emu_shared;
void shared_block_begin(unsigned warps);
void shared_barrier();
void shared_syncwarp(unsigned warp, unsigned mask);
void shared_access(uint64_t addr, uint64_t n, bool write, bool atomic, const void* pc);
// The running block's barrier interval (numbered per host thread, never repeated among its
// blocks), and whether warp `warp` passed a __syncwarp in it (memory.cpp's global-memory check).
uint32_t shared_interval();
bool shared_warp_synced(unsigned warp);
// shared_vars.cpp: the `__shared__` variables by offset in the TLS block (registered by the
// kernels, emu_shared_declared): whether [off, off + n) lies in one (checked on every access),
// else what it touches (for the message); the variable holding a byte ("" if none).
void shared_vars_init(uint64_t tls_size);
bool shared_var_within(uint64_t off, uint64_t n);
std::string shared_var_outside(uint64_t off, uint64_t n);
std::string shared_var_name(uint64_t off);
// shared.cpp: the source line of the kernel code that returns to `pc` ("faults.cu:15").
std::string source_of(const void* pc);
// runtime.cpp: the running emulated thread's index in its block, and coordinates as "(x,y,z)".
unsigned emu_thread_linear();
std::string emu_thread_coords(unsigned linear);
// runtime.cpp: the running fiber's stack, [lo, lo + size): the thread's own local memory, the
// one place outside device and shared memory a kernel's pointers may reach (memory.cpp). And,
// for a message, "thread (x,y,z)" when `addr` lies on the stack of another thread of the block,
// else "".
extern __thread EmuRange emu_stack;
std::string emu_stack_owner(uint64_t addr);
