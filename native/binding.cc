// The N-API surface of slabpool, and nothing else: an Engine object implementing the contract of
// lib/engine.ts over slabpool::Allocator (slab.h); SharedPool's shared regions are in
// shared_binding.cc. Arguments are checked here again even though
// lib/ validated them: a native method must never trust its caller. Every refusal throws an Error
// with code ERR_SLABPOOL_INTERNAL and a message starting "slabpool internal error: ", as the TS
// engine's do (lib/errors.ts internalError()).
//
// Memory reaches JavaScript as one ArrayBuffer per slab, created when the slab is added and kept
// by a strong reference until the slab is freed or the engine destroyed; views are made in JS.
// The lifetime rule itself is part of the engine contract in lib/engine.ts. How this file keeps it:
//   - external ArrayBuffer (the normal case): it holds a reference to the slab memory through a
//     BufferHold, released by its finalizer (a later setImmediate, after GC). The allocator holds
//     another. The address range is freed with the last one, so blocks survive a garbage-collected
//     pool and a stale view can never reach memory given to anything else.
//   - freeSlab()/destroy() do not detach (detaching any ArrayBuffer costs the whole process V8's
//     fast path for typed arrays): the engine drops its reference to the buffer and the allocator
//     retires the memory (slab.h slab_memory_retire): decommitted at once, so physical memory goes
//     back to the OS now and every view reads zeros, the range itself at the buffer's finalizer.
//   - with `detach` (an opt-in for debugging), they detach the buffer instead and drop its
//     reference at once: every view has length 0 and the memory is freed now.
//   - where external ArrayBuffers are refused (V8 sandbox), slabs live in V8-owned ArrayBuffers
//     over-allocated by the alignment and offset to it; V8 frees them when they are collected.
// Huge pages and pre-faulting (the hugePages and prefault options) are the OS layer's (os.h): the
// allocator passes the request to os::alloc_slab; this file pre-faults the V8-owned slabs it
// adopts, and reads back, on demand, what the kernel gave (pages()).
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "shared_binding.h"
#include "slab.h"

#ifndef SLABPOOL_SOURCE_HASH
#define SLABPOOL_SOURCE_HASH "unknown"
#endif

namespace {

using slabpool::Allocator;

// An external ArrayBuffer's reference to its slab memory; memory is null once dropped at detach.
struct BufferHold {
  slabpool::SlabMemory* memory;
};

void FinalizeSlab(napi_env /*env*/, void* /*data*/, void* hint) {
  BufferHold* hold = static_cast<BufferHold*>(hint);
  if (hold->memory != nullptr) slabpool::slab_memory_release(hold->memory);
  delete hold;
}

// The one builder of the errors this file throws.
Napi::Error InternalError(Napi::Env env, const std::string& what) {
  Napi::Error err = Napi::Error::New(env, "slabpool internal error: " + what);
  err.Set("code", Napi::String::New(env, "ERR_SLABPOOL_INTERNAL"));
  return err;
}

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "NativeEngine",
        {
            InstanceValue("kind", Napi::String::New(env, "native"), napi_enumerable),
            InstanceValue("alignmentScope", Napi::String::New(env, "address"), napi_enumerable),
            InstanceAccessor<&Engine::Memory>("memory", napi_enumerable),
            InstanceMethod<&Engine::AddSlab>("addSlab"),
            InstanceMethod<&Engine::FreeSlab>("freeSlab"),
            InstanceMethod<&Engine::SlabFree>("slabFree"),
            InstanceMethod<&Engine::SlabBuffer>("slabBuffer"),
            InstanceMethod<&Engine::SlabBase>("slabBase"),
            InstanceMethod<&Engine::SlabAddress>("slabAddress"),
            InstanceMethod<&Engine::LargestRunWith>("largestRunWith"),
            InstanceMethod<&Engine::Check>("check"),
            InstanceMethod<&Engine::Destroy>("destroy"),
            InstanceMethod<&Engine::Pin>("pin"),
            InstanceMethod<&Engine::Unpin>("unpin"),
            InstanceMethod<&Engine::Pages>("pages"),
        });
  }

  // new NativeEngine(blockBytes, stride, alignment, slabBlocks, v8Memory, detach, hugePages, prefault,
  //                  markedDetachable)
  explicit Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
    Napi::Env env = info.Env();
    size_t block_bytes, stride;
    uint32_t alignment, slab_blocks;
    if (!SizeArg(info, 0, &block_bytes) || !SizeArg(info, 1, &stride) || !Uint32Arg(info, 2, &alignment) ||
        !Uint32Arg(info, 3, &slab_blocks)) {
      return;
    }
    if (block_bytes == 0 || block_bytes > stride) {
      InternalError(env, "block bytes must be between 1 and the stride").ThrowAsJavaScriptException();
      return;
    }
    v8_memory_ = info.Length() > 4 && info[4].ToBoolean().Value();
    detach_ = info.Length() > 5 && info[5].ToBoolean().Value();
    pages_.huge_pages = info.Length() > 6 && info[6].ToBoolean().Value();
    pages_.prefault = info.Length() > 7 && info[7].ToBoolean().Value();
    marked_detachable_ = info.Length() > 8 && info[8].ToBoolean().Value();
    alignment_ = alignment;
    stride_ = stride;
    allocator_ = std::make_unique<Allocator>(stride, alignment, slab_blocks, pages_);
    if (!allocator_->valid()) {
      InternalError(env, "invalid pool geometry").ThrowAsJavaScriptException();
      return;
    }
    // The figures live in a V8-owned buffer that JS reads without a call; synced after every change.
    Napi::Float64Array counters = Napi::Float64Array::New(env, slabpool::kCounterCount);
    counters_data_ = counters.Data();
    counters_ = Napi::Persistent(counters);
    Sync();
    info.This().As<Napi::Object>().DefineProperty(Napi::PropertyDescriptor::Value("counters", counters, napi_enumerable));
    // The list of block indices shared with JS once (lib/engine.ts Engine.scratch): V8 never moves
    // a backing store, and this buffer never leaves the pool, so its address holds for every call.
    Napi::Int32Array scratch = Napi::Int32Array::New(env, kScratchLength);
    scratch_data_ = scratch.Data();
    scratch_ = Napi::Persistent(scratch);
    info.This().As<Napi::Object>().DefineProperty(Napi::PropertyDescriptor::Value("scratch", scratch, napi_enumerable));
    // The handle the hot functions take (see "the hot methods" below).
    handle_ = new FastHandle{this, 2};
    napi_value external;
    if (napi_create_external(env, handle_, [](napi_env, void* data, void*) { DropHandle(static_cast<FastHandle*>(data)); }, nullptr, &external) != napi_ok) {
      handle_->holders = 1;
      InternalError(env, "could not create the engine's handle").ThrowAsJavaScriptException();
      return;
    }
    info.This().As<Napi::Object>().DefineProperty(Napi::PropertyDescriptor::Value("handle", Napi::Value(env, external), napi_default));
  }

  ~Engine() override {
    // Pins left when the engine is collected (their Pin objects were collected too).
    for (Slot& s : slots_) {
      if (s.pinned != nullptr) slabpool::slab_memory_unpin(s.pinned);
    }
    if (handle_ == nullptr) return;
    handle_->engine = nullptr;
    DropHandle(handle_);
  }

 private:
  Napi::Value Memory(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), v8_memory_ ? "v8" : "external");
  }

  Napi::Value AddSlab(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t slot, blocks;
    if (!Live(env) || !Uint32Arg(info, 0, &slot) || !Uint32Arg(info, 1, &blocks)) return Napi::Value();
    if (slot > allocator_->slot_count() || allocator_->has_slab(slot)) return Fail(env, "slot taken or out of order");
    Napi::Value buffer;
    uint32_t base = 0;
    slabpool::os::SlabMapping mapping;
    Allocator::Result result = v8_memory_ ? Allocator::Result::kNoMemory : allocator_->add_slab(slot, blocks);
    if (result == Allocator::Result::kInvalid) return Fail(env, "invalid slab");
    BufferHold* hold = nullptr;
    if (!v8_memory_ && result == Allocator::Result::kOk) {
      hold = new (std::nothrow) BufferHold{nullptr};
      if (hold == nullptr) {
        allocator_->free_slab(slot);
        return Napi::Boolean::New(env, false);
      }
      hold->memory = slabpool::slab_memory_retain(allocator_->slab_memory(slot));
      napi_value ab;
      napi_status status = napi_create_external_arraybuffer(env, allocator_->slab_base(slot), SlabBytes(blocks),
                                                            FinalizeSlab, hold, &ab);
      if (status == napi_ok) {
        buffer = Napi::Value(env, ab);
        mapping = allocator_->slab_mapping(slot);
      } else {
        slabpool::slab_memory_release(hold->memory);
        delete hold;
        hold = nullptr;
        allocator_->free_slab(slot);
        if (status != napi_no_external_buffers_allowed) return Fail(env, "could not create an external ArrayBuffer");
        v8_memory_ = true;  // this runtime refuses them: from now on, V8-owned slabs
        if (env.IsExceptionPending()) env.GetAndClearPendingException();
      }
    }
    if (v8_memory_) {
      void* data = nullptr;
      napi_value ab;
      if (napi_create_arraybuffer(env, SlabBytes(blocks) + alignment_, &data, &ab) != napi_ok) {
        if (env.IsExceptionPending()) env.GetAndClearPendingException();
        return Napi::Boolean::New(env, false);
      }
      base = static_cast<uint32_t>((alignment_ - reinterpret_cast<uintptr_t>(data) % alignment_) % alignment_);
      // V8 allocated it (zeroed), so the OS layer can only populate or touch its pages.
      if (pages_.prefault) {
        mapping.prefault = slabpool::os::prefault(static_cast<uint8_t*>(data) + base, SlabBytes(blocks));
        if (mapping.prefault == slabpool::os::Prefault::kFailed) return Napi::Boolean::New(env, false);
      }
      result = allocator_->add_slab(slot, blocks, static_cast<uint8_t*>(data) + base);
      if (result != Allocator::Result::kOk) return Fail(env, "could not adopt a V8 slab");
      buffer = Napi::Value(env, ab);
    }
    if (result == Allocator::Result::kNoMemory) return Napi::Boolean::New(env, false);
    if (slots_.size() <= slot) slots_.resize(slot + 1);
    slots_[slot].buffer = Napi::Persistent(buffer.As<Napi::ArrayBuffer>());
    slots_[slot].base = base;
    slots_[slot].hold = hold;
    slots_[slot].mapping = mapping;
    Sync();
    return Napi::Boolean::New(env, true);
  }

  Napi::Value FreeSlab(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t slot;
    if (!Live(env) || !SlotArg(info, 0, &slot)) return Napi::Value();
    if (allocator_->slab_free(slot) != allocator_->slab_blocks(slot)) return Fail(env, "slab is not empty");
    if (slots_[slot].pins != 0) return Fail(env, "slab is pinned");
    DropBuffer(slot);
    size_t bytes = allocator_->free_slab(slot);
    Sync();
    return Napi::Number::New(env, static_cast<double>(bytes));
  }

  Napi::Value SlabFree(const Napi::CallbackInfo& info) {
    uint32_t slot;
    if (!Live(info.Env()) || !SlotArg(info, 0, &slot)) return Napi::Value();
    return Napi::Number::New(info.Env(), allocator_->slab_free(slot));
  }

  Napi::Value SlabBuffer(const Napi::CallbackInfo& info) {
    uint32_t slot;
    if (!Live(info.Env()) || !SlotArg(info, 0, &slot)) return Napi::Value();
    return slots_[slot].buffer.Value();
  }

  Napi::Value SlabBase(const Napi::CallbackInfo& info) {
    uint32_t slot;
    if (!Live(info.Env()) || !SlotArg(info, 0, &slot)) return Napi::Value();
    return Napi::Number::New(info.Env(), slots_[slot].base);
  }

  Napi::Value SlabAddress(const Napi::CallbackInfo& info) {
    uint32_t slot;
    if (!Live(info.Env()) || !SlotArg(info, 0, &slot)) return Napi::Value();
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(allocator_->slab_base(slot))));
  }

  // ---- the hot methods, as module functions taking the engine's handle ----
  // acquire, release, acquireRun and releaseRun are exported by the module, not the prototype:
  // node-addon-api finds the C++ object of a method's `this` with napi_unwrap, a private-symbol
  // lookup that was half of a call's ~80 ns here; these take the engine's `handle` (an External)
  // as their first argument and read the pointer out of it (measured: ~40 ns a call).
  // lib/native.ts calls them. The handle is shared by the engine and its External, and freed
  // with the last of the two; a call after the engine was collected is refused.
 public:
  struct FastHandle {
    Engine* engine;  // null once the engine is finalized
    uint32_t holders;
  };

  static void DropHandle(FastHandle* handle) {
    if (--handle->holders == 0) delete handle;
  }

  // The engine whose handle is the first argument, the others in argv[1..n); nullptr (an
  // exception pending) if it is none, gone or destroyed.
  template <size_t n>
  static Engine* FastThis(napi_env env, napi_callback_info info, napi_value (&argv)[n]) {
    size_t argc = n;
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
    void* data = nullptr;
    // napi_get_value_external refuses (napi_invalid_arg) anything that is not an External.
    if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == nullptr) {
      InternalError(Napi::Env(env), "argument 0 must be an engine's handle").ThrowAsJavaScriptException();
      return nullptr;
    }
    Engine* engine = static_cast<FastHandle*>(data)->engine;
    if (engine == nullptr) {
      InternalError(Napi::Env(env), "engine used after it was collected").ThrowAsJavaScriptException();
      return nullptr;
    }
    return engine->Live(Napi::Env(env)) ? engine : nullptr;
  }

  // As Uint32Arg, for a hot function's argument i.
  static bool FastUint32(napi_env env, napi_value value, size_t i, uint32_t* out) {
    double d;
    if (napi_get_value_double(env, value, &d) == napi_ok && d >= 0 && d <= 4294967295.0 && d == static_cast<double>(static_cast<uint32_t>(d))) {
      *out = static_cast<uint32_t>(d);
      return true;
    }
    Napi::Env e(env);
    if (e.IsExceptionPending()) e.GetAndClearPendingException();
    InternalError(e, "argument " + std::to_string(i) + " must be an unsigned 32-bit integer").ThrowAsJavaScriptException();
    return false;
  }

  // As CountArg: entries of the scratch list, 0..kScratchLength.
  static bool FastCount(napi_env env, napi_value value, uint32_t* count) {
    if (!FastUint32(env, value, 1, count)) return false;
    if (*count <= kScratchLength) return true;
    InternalError(Napi::Env(env), "count past the end of the scratch list").ThrowAsJavaScriptException();
    return false;
  }

  static napi_value FastFail(napi_env env, const char* what) {
    InternalError(Napi::Env(env), what).ThrowAsJavaScriptException();
    return nullptr;
  }

  // acquire(max): takes up to max lowest free blocks into scratch; returns how many.
  static napi_value FastAcquire(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    Engine* engine = FastThis(env, info, argv);
    uint32_t max;
    if (engine == nullptr || !FastCount(env, argv[1], &max)) return nullptr;
    uint32_t n = engine->allocator_->acquire(engine->scratch_data_, max);
    engine->Sync();
    napi_value result;
    napi_create_uint32(env, n, &result);
    return result;
  }

  // release(count): frees scratch[0..count).
  static napi_value FastRelease(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    Engine* engine = FastThis(env, info, argv);
    uint32_t count;
    if (engine == nullptr || !FastCount(env, argv[1], &count)) return nullptr;
    bool ok = engine->allocator_->release(engine->scratch_data_, count);
    engine->Sync();
    return ok ? nullptr : FastFail(env, "release of a block that is not allocated");  // nullptr: undefined
  }

  // acquireRun(k): first fit; the run's start, or -1.
  static napi_value FastAcquireRun(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    Engine* engine = FastThis(env, info, argv);
    uint32_t k;
    if (engine == nullptr || !FastUint32(env, argv[1], 1, &k)) return nullptr;
    int64_t start = engine->allocator_->acquire_run(k);
    if (start == slabpool::kRefused) return FastFail(env, "acquireRun of 0 blocks");
    engine->Sync();
    napi_value result;
    napi_create_int32(env, static_cast<int32_t>(start), &result);  // a block index (add_slab keeps them in int32) or -1
    return result;
  }

  // releaseRun(start, k)
  static napi_value FastReleaseRun(napi_env env, napi_callback_info info) {
    napi_value argv[3];
    Engine* engine = FastThis(env, info, argv);
    uint32_t start, k;
    if (engine == nullptr || !FastUint32(env, argv[1], 1, &start) || !FastUint32(env, argv[2], 2, &k)) return nullptr;
    if (!engine->allocator_->release_run(start, k)) return FastFail(env, "release of a run that is not allocated");
    engine->Sync();
    return nullptr;  // undefined
  }

 private:

  Napi::Value LargestRunWith(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t count;
    if (!Live(env) || !CountArg(info, 0, &count)) return Napi::Value();
    int64_t largest = allocator_->largest_run_with(scratch_data_, count);
    if (largest == slabpool::kRefused) return Fail(env, "largestRunWith given an index that is not an allocated block");
    return Napi::Number::New(env, static_cast<double>(largest));
  }

  Napi::Value Check(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t count;
    if (!Live(env)) return Napi::Value();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      return Fail(env, "check needs the pool's Uint8Array of block states");
    }
    Napi::Uint8Array state = info[0].As<Napi::Uint8Array>();
    if (!CountArg(info, 1, &count)) return Napi::Value();
    std::string problem = allocator_->check(state.Data(), state.ElementLength(), scratch_data_, count);
    if (problem.empty()) {
      for (size_t slot = 0; slot < allocator_->slot_count() && problem.empty(); slot++) {
        bool has = allocator_->has_slab(static_cast<uint32_t>(slot));
        if (has != (slot < slots_.size() && !slots_[slot].buffer.IsEmpty())) problem = "slab " + std::to_string(slot) + " and its ArrayBuffer disagree";
      }
    }
    if (problem.empty()) return env.Null();
    return Napi::String::New(env, problem);
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (allocator_ == nullptr) return env.Undefined();
    for (size_t slot = 0; slot < slots_.size(); slot++) DropBuffer(static_cast<uint32_t>(slot));
    allocator_->decommit_all();  // what views are left (not detached) read zeros; pages go back now
    allocator_.reset();
    for (int i = 0; i < slabpool::kCounterCount; i++) counters_data_[i] = 0;
    counters_data_[slabpool::kLowest] = std::numeric_limits<double>::infinity();  // no free block
    return env.Undefined();
  }

  // pin(slot): one more pin on the slot's slab (lib/pin.ts). The first retains its memory
  // (external memory; V8-owned memory is kept by the pool's reference to a view) so that neither
  // destroy() nor the collection of the slab's ArrayBuffer frees or decommits it, and with detach
  // the slab's buffer is not detached (for V8-owned memory that would free it).
  Napi::Value Pin(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t slot;
    if (!Live(env) || !SlotArg(info, 0, &slot)) return Napi::Value();
    Slot& s = slots_[slot];
    if (s.pins == UINT32_MAX) return Fail(env, "too many pins on one slab");
    if (s.pins++ == 0 && allocator_->slab_memory(slot) != nullptr) s.pinned = slabpool::slab_memory_pin(allocator_->slab_memory(slot));
    return env.Undefined();
  }

  // unpin(slot): drops a pin, also after destroy(); the last one of a slab already given up
  // decommits it (slab.h slab_memory_unpin).
  Napi::Value Unpin(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t slot;
    if (!Uint32Arg(info, 0, &slot)) return Napi::Value();
    if (slot >= slots_.size() || slots_[slot].pins == 0) return Fail(env, "unpin of a slot that is not pinned");
    Slot& s = slots_[slot];
    if (--s.pins != 0) return env.Undefined();
    // The last pin of a slab that destroy() kept attached (detach_): detach it now, as destroy()
    // would have, before the pin's own reference goes.
    if (allocator_ == nullptr) DropBuffer(slot);
    if (s.pinned != nullptr) {
      slabpool::slab_memory_unpin(s.pinned);
      s.pinned = nullptr;
    }
    return env.Undefined();
  }

  // pages(readBack): what the slabs' pages were given (os.h SlabMapping), summed over the slabs
  // held; with readBack, also the bytes huge pages back now in the slabs advised for them (or
  // refused: the kernel may still back them in THP mode 'always'), read from the kernel (one
  // PAGEMAP_SCAN per slab, or /proc/self/smaps once: see os.h). Never called on the hot path:
  // stats() calls it, and only for a pool that asked for an option.
  Napi::Value Pages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return Napi::Value();
    using slabpool::os::Huge;
    using slabpool::os::Prefault;
    const bool read_back = info.Length() > 0 && info[0].ToBoolean().Value();
    double advised_slabs = 0, advised_bytes = 0, too_small = 0, unavailable = 0, refused = 0, populated = 0, touched = 0;
    int error = 0;
    std::vector<slabpool::os::Range> ranges;
    for (size_t slot = 0; slot < slots_.size(); slot++) {
      if (!allocator_->has_slab(static_cast<uint32_t>(slot))) continue;
      const slabpool::os::SlabMapping& m = slots_[slot].mapping;
      const size_t bytes = SlabBytes(allocator_->slab_blocks(static_cast<uint32_t>(slot)));
      if (m.huge == Huge::kAdvised) {
        advised_slabs++;
        advised_bytes += static_cast<double>(bytes);
      }
      if (m.huge == Huge::kTooSmall) too_small++;
      if (m.huge == Huge::kUnavailable) unavailable++;
      if (m.huge == Huge::kRefused) {
        refused++;
        error = m.error;
      }
      if (m.prefault == Prefault::kPopulated) populated += static_cast<double>(bytes);
      if (m.prefault == Prefault::kTouched) touched += static_cast<double>(bytes);
      if (read_back && (m.huge == Huge::kAdvised || m.huge == Huge::kRefused)) ranges.push_back({allocator_->slab_base(static_cast<uint32_t>(slot)), bytes});
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("advisedSlabs", advised_slabs);
    out.Set("advisedBytes", advised_bytes);
    out.Set("tooSmallSlabs", too_small);
    out.Set("unavailableSlabs", unavailable);
    out.Set("refusedSlabs", refused);
    out.Set("refusedError", error == 0 ? env.Null() : Napi::String::New(env, ErrorName(error)));
    out.Set("populatedBytes", populated);
    out.Set("touchedBytes", touched);
    Napi::Value huge_bytes = env.Null(), how = env.Null();
    if (!ranges.empty()) {
      slabpool::os::ReadBack method;
      int64_t bytes = slabpool::os::huge_page_bytes(ranges.data(), ranges.size(), &method);
      if (bytes >= 0) {
        huge_bytes = Napi::Number::New(env, static_cast<double>(bytes));
        how = Napi::String::New(env, method == slabpool::os::ReadBack::kPagemap ? "pagemap" : "smaps");
      }
    }
    out.Set("hugeBytes", huge_bytes);
    out.Set("readBack", how);
    return out;
  }

  static std::string ErrorName(int error) {
    switch (error) {
      case EINVAL: return "EINVAL";
      case ENOMEM: return "ENOMEM";
      case EPERM: return "EPERM";
      case EAGAIN: return "EAGAIN";
      default: return "errno " + std::to_string(error);
    }
  }

  // ---- helpers ----

  size_t SlabBytes(uint32_t blocks) const { return static_cast<size_t>(blocks) * stride_; }

  // Drops the engine's reference to the slot's ArrayBuffer. With detach_, the buffer is detached
  // first: every view on it has length 0, no JavaScript can reach the memory, so the buffer's
  // reference to it goes now too (its finalizer, later, only frees the hold). Without, the
  // buffer keeps its reference until it is collected. A pinned slab is not detached (for
  // V8-owned memory that would free it under native code): with detach_, its reference is kept
  // until the last unpin calls this again. Two slabs are left attached even with detach_:
  //   - one already detached by something else: a transfer (a web stream's BYOB read into a
  //     block, a postMessage) moved its backing store to another ArrayBuffer, which still
  //     reaches the memory; the hold's reference is that store's, released by its finalizer
  //     when the new owner is collected, never here (that would free memory in use);
  //   - a V8-owned slab where a buffer marked untransferable cannot be detached: lib/native.ts
  //     marks V8-owned slabs (a transfer would take their memory from under the allocator and its
  //     pins), and where V8 keeps the mark as a detach key (Node >= 24) napi_detach_arraybuffer on
  //     such a buffer aborts the process (its v8::Maybe is Nothing, and it calls Check()). External
  //     slabs are not marked with detach, so they always can be.
  void DropBuffer(uint32_t slot) {
    if (slot >= slots_.size() || slots_[slot].buffer.IsEmpty()) return;
    Slot& s = slots_[slot];
    if (detach_ && s.pins != 0) return;
    if (detach_) {
      Napi::ArrayBuffer ab = s.buffer.Value();
      bool attached = ab.ByteLength() != 0;  // a slab is never empty: 0 bytes is detached
      bool detachable = s.hold != nullptr || marked_detachable_;
      if (attached && detachable && napi_detach_arraybuffer(Env(), ab) == napi_ok && s.hold != nullptr) {
        slabpool::slab_memory_release(s.hold->memory);
        s.hold->memory = nullptr;
      }
    }
    s.hold = nullptr;
    s.buffer.Reset();
    s.base = 0;
  }

  void Sync() {
    const double* c = allocator_->counters();
    for (int i = 0; i < slabpool::kCounterCount; i++) counters_data_[i] = c[i];
  }

  bool Live(Napi::Env env) {
    if (allocator_ != nullptr) return true;
    InternalError(env, "engine used after destroy").ThrowAsJavaScriptException();
    return false;
  }

  Napi::Value Fail(Napi::Env env, const char* what) {
    InternalError(env, what).ThrowAsJavaScriptException();
    return Napi::Value();
  }

  static bool Uint32Arg(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
    if (i < info.Length() && info[i].IsNumber()) {
      double d = info[i].As<Napi::Number>().DoubleValue();
      if (d >= 0 && d <= 4294967295.0 && d == static_cast<double>(static_cast<uint32_t>(d))) {
        *out = static_cast<uint32_t>(d);
        return true;
      }
    }
    InternalError(info.Env(), "argument " + std::to_string(i) + " must be an unsigned 32-bit integer").ThrowAsJavaScriptException();
    return false;
  }

  // A byte count: an integer from 0 to 2^53 (a block or stride may be 4 GiB, past uint32).
  static bool SizeArg(const Napi::CallbackInfo& info, size_t i, size_t* out) {
    if (i < info.Length() && info[i].IsNumber()) {
      double d = info[i].As<Napi::Number>().DoubleValue();
      if (d >= 0 && d <= 9007199254740992.0 && d <= static_cast<double>(SIZE_MAX) && d == std::floor(d)) {
        *out = static_cast<size_t>(d);
        return true;
      }
    }
    InternalError(info.Env(), "argument " + std::to_string(i) + " must be a byte count").ThrowAsJavaScriptException();
    return false;
  }

  bool SlotArg(const Napi::CallbackInfo& info, size_t i, uint32_t* slot) {
    if (!Uint32Arg(info, i, slot)) return false;
    if (allocator_->has_slab(*slot) && *slot < slots_.size() && !slots_[*slot].buffer.IsEmpty()) return true;
    InternalError(info.Env(), "no slab in slot " + std::to_string(*slot)).ThrowAsJavaScriptException();
    return false;
  }

  // How many entries of the scratch list to use, at i: 0..kScratchLength.
  static bool CountArg(const Napi::CallbackInfo& info, size_t i, uint32_t* count) {
    if (!Uint32Arg(info, i, count)) return false;
    if (*count <= kScratchLength) return true;
    InternalError(info.Env(), "count past the end of the scratch list").ThrowAsJavaScriptException();
    return false;
  }

  // What the binding keeps per slab slot beside the allocator's own.
  struct Slot {
    Napi::Reference<Napi::ArrayBuffer> buffer;  // empty while the slot holds no slab
    uint32_t base = 0;                          // byte offset of block 0 within buffer
    BufferHold* hold = nullptr;                 // owned by the buffer's finalizer; null for V8-owned slabs
    uint32_t pins = 0;                          // live pins on the slab (outlive destroy())
    slabpool::SlabMemory* pinned = nullptr;     // the pins' reference to external memory, while pins > 0
    slabpool::os::SlabMapping mapping;          // what the OS layer did to its pages
  };

  std::unique_ptr<Allocator> allocator_;
  std::vector<Slot> slots_;
  Napi::Reference<Napi::Float64Array> counters_;
  double* counters_data_ = nullptr;
  static constexpr uint32_t kScratchLength = 64;  // lib/engine.ts SCRATCH_LENGTH
  Napi::Reference<Napi::Int32Array> scratch_;
  int32_t* scratch_data_ = nullptr;
  FastHandle* handle_ = nullptr;
  size_t alignment_ = 8;
  size_t stride_ = 8;
  bool v8_memory_ = false;
  bool detach_ = false;
  bool marked_detachable_ = false;  // napi_detach_arraybuffer can detach a marked buffer here (DropBuffer)
  slabpool::os::SlabRequest pages_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeEngine", Engine::Define(env));
  // The engine's hot methods, taking its handle first (Engine's "the hot methods").
  const std::pair<const char*, napi_callback> hot[] = {
      {"acquire", Engine::FastAcquire}, {"release", Engine::FastRelease}, {"acquireRun", Engine::FastAcquireRun}, {"releaseRun", Engine::FastReleaseRun}};
  for (const auto& [name, cb] : hot) {
    napi_value fn;
    if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn) != napi_ok) return exports;
    exports.Set(name, Napi::Value(env, fn));
  }
  exports.Set("sourceHash", Napi::String::New(env, SLABPOOL_SOURCE_HASH));
  // Bytes of native slab memory not yet freed in this process (address ranges still held), and of
  // those the bytes not decommitted (that may hold physical memory): for tests and leak hunting.
  exports.Set("liveSlabBytes", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), static_cast<double>(slabpool::slab_memory_live_bytes()));
              }));
  // What this system offers for huge pages (os.h huge_page_support): for stats() reasons.
  exports.Set("hugePageSupport", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                Napi::Env env = info.Env();
                const slabpool::os::HugePageSupport support = slabpool::os::huge_page_support();
                Napi::Object out = Napi::Object::New(env);
                out.Set("pageBytes", static_cast<double>(support.page_bytes));
                out.Set("mode", support.mode != nullptr ? Napi::Value(Napi::String::New(env, support.mode)) : env.Null());
                out.Set("whyNot", support.why_not != nullptr ? Napi::Value(Napi::String::New(env, support.why_not)) : env.Null());
                return out;
              }));
  exports.Set("committedSlabBytes", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), static_cast<double>(slabpool::slab_memory_committed_bytes()));
              }));
  slabpool::ExportSharedRegions(env, exports);  // SharedPool's native memory (shared_binding.cc)
  return exports;
}

}  // namespace

NODE_API_MODULE(slabpool, Init)
