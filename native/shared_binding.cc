// sharedRegionCreate / sharedRegionAttach / sharedRegionTotals: the shared regions of
// shared_region.h as JavaScript sees them (lib/native.ts NativeAddon types them, lib/shared-*.ts
// uses them).
//
// Lifetime: every ArrayBuffer these functions make is an external ArrayBuffer over the region,
// holding one reference of its own (its id is the finalize hint), dropped by its finalizer: the
// memory outlives every view of it in every thread, and is freed with the last one. A thread that
// ends before its buffers' finalizers ran drops its references in the env cleanup hook (this
// env's owner number): its views can no longer run. A reference released by both (a finalizer
// after the hook) is dropped once (shared_region::release is exactly-once by id).
//
// Failures the caller can meet come back as a status string, which lib/ turns into a coded error:
// "no memory", "unknown", "ended", "size mismatch", "no external buffers" (a V8-sandbox runtime:
// napi-facts 1). Arguments outside the contract throw ERR_SLABPOOL_INTERNAL, as binding.cc's do.
#include "shared_binding.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>

#include "shared_region.h"

namespace slabpool {
namespace {

namespace sr = shared_region;

// One per env: the owner number its references are taken for. Freed by the cleanup hook.
struct EnvOwner {
  uint64_t id;
};

std::atomic<uint64_t> next_owner{1};

void CleanupEnv(void* arg) {
  EnvOwner* owner = static_cast<EnvOwner*>(arg);
  sr::release_owner(owner->id);
  delete owner;
}

void FinalizeRegionBuffer(napi_env /*env*/, void* /*data*/, void* hint) {
  sr::release(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(hint)));
}

napi_value String(napi_env env, const char* text) {
  napi_value out = nullptr;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  return out;
}

// Throws Error("slabpool internal error: <what>") with code ERR_SLABPOOL_INTERNAL; returns nullptr.
napi_value Internal(napi_env env, const char* what) {
  char message[160] = "slabpool internal error: ";
  std::strncat(message, what, sizeof message - std::strlen(message) - 1);
  napi_value err = nullptr;
  if (napi_create_error(env, String(env, "ERR_SLABPOOL_INTERNAL"), String(env, message), &err) == napi_ok) napi_throw(env, err);
  return nullptr;
}

// The callback's arguments (up to 2) and its data (the env's owner).
struct Args {
  napi_value argv[2] = {nullptr, nullptr};
  size_t argc = 2;
  void* data = nullptr;
};

bool GetArgs(napi_env env, napi_callback_info info, Args* args) {
  return napi_get_cb_info(env, info, &args->argc, args->argv, nullptr, &args->data) == napi_ok;
}

// A number argument as a double; false if it is not a number.
bool NumberArg(napi_env env, napi_value value, double* out) {
  napi_valuetype type = napi_undefined;
  return value != nullptr && napi_typeof(env, value, &type) == napi_ok && type == napi_number && napi_get_value_double(env, value, out) == napi_ok;
}

// A whole number of bytes from 1 to kMaxRegionBytes, or 0.
size_t BytesArg(napi_env env, napi_value value) {
  double d = 0;
  if (!NumberArg(env, value, &d) || !(d >= 1 && d <= static_cast<double>(sr::kMaxRegionBytes)) || d != std::floor(d)) return 0;
  return static_cast<size_t>(d);
}

bool Set(napi_env env, napi_value object, const char* name, napi_value value) {
  return value != nullptr && napi_set_named_property(env, object, name, value) == napi_ok;
}

napi_value Double(napi_env env, double value) {
  napi_value out = nullptr;
  napi_create_double(env, value, &out);
  return out;
}

napi_value BigInt(napi_env env, uint64_t value) {
  napi_value out = nullptr;
  napi_create_bigint_uint64(env, value, &out);
  return out;
}

// { token, address, buffer } for reference `ref`, its external ArrayBuffer holding the reference;
// a status string (the reference dropped) if the runtime refuses external ArrayBuffers.
napi_value Wrap(napi_env env, const sr::Reference& ref) {
  napi_value ab = nullptr;
  const napi_status status = napi_create_external_arraybuffer(env, ref.base, ref.bytes, FinalizeRegionBuffer,
                                                              reinterpret_cast<void*>(static_cast<uintptr_t>(ref.id)), &ab);
  if (status != napi_ok) {
    sr::release(ref.id);
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    if (status == napi_no_external_buffers_allowed) return String(env, "no external buffers");
    return Internal(env, "could not create an external ArrayBuffer over a shared region");
  }
  napi_value out = nullptr;
  if (napi_create_object(env, &out) != napi_ok || !Set(env, out, "token", BigInt(env, ref.token)) ||
      !Set(env, out, "address", BigInt(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ref.base)))) || !Set(env, out, "buffer", ab)) {
    return Internal(env, "could not describe a shared region");  // the buffer's finalizer drops the reference
  }
  return out;
}

// sharedRegionCreate(bytes, alignment): a new zeroed region -> { token, address, buffer } or "no memory".
napi_value Create(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return Internal(env, "sharedRegionCreate: could not read its arguments");
  const uint64_t owner = static_cast<EnvOwner*>(args.data)->id;
  const size_t bytes = BytesArg(env, args.argv[0]);
  if (bytes == 0) return Internal(env, "sharedRegionCreate: bytes must be a whole number from 1 to 2^32");
  double alignment = 0;
  if (!NumberArg(env, args.argv[1], &alignment) || !(alignment >= 8 && alignment <= 4096) || alignment != std::floor(alignment)) {
    return Internal(env, "sharedRegionCreate: alignment must be a power of two from 8 to 4096");
  }
  sr::Reference ref{};
  const sr::Status status = sr::create(bytes, static_cast<size_t>(alignment), owner, &ref);
  if (status == sr::Status::kNoMemory) return String(env, "no memory");
  if (status != sr::Status::kOk) return Internal(env, "sharedRegionCreate: refused by the registry (alignment not a power of two?)");
  return Wrap(env, ref);
}

// sharedRegionAttach(token, bytes): another reference to a living region of that size ->
// { token, address, buffer }, or "unknown", "ended", "size mismatch", "no memory".
napi_value Attach(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return Internal(env, "sharedRegionAttach: could not read its arguments");
  const uint64_t owner = static_cast<EnvOwner*>(args.data)->id;
  napi_valuetype type = napi_undefined;
  if (args.argv[0] == nullptr || napi_typeof(env, args.argv[0], &type) != napi_ok || type != napi_bigint) {
    return Internal(env, "sharedRegionAttach: token must be a bigint");
  }
  uint64_t token = 0;
  bool lossless = false;
  if (napi_get_value_bigint_uint64(env, args.argv[0], &token, &lossless) != napi_ok || !lossless) return String(env, "unknown");
  const size_t bytes = BytesArg(env, args.argv[1]);
  if (bytes == 0) return Internal(env, "sharedRegionAttach: bytes must be a whole number from 1 to 2^32");
  sr::Reference ref{};
  const sr::Status status = sr::acquire(token, bytes, owner, &ref);
  if (status != sr::Status::kOk) return String(env, sr::status_name(status));
  return Wrap(env, ref);
}

// sharedRegionTotals(): the process's figures (shared_region.h Totals), for stats and leak checks.
napi_value Totals(napi_env env, napi_callback_info /*info*/) {
  const sr::Totals t = sr::totals();
  napi_value out = nullptr;
  if (napi_create_object(env, &out) != napi_ok || !Set(env, out, "regions", Double(env, static_cast<double>(t.regions))) ||
      !Set(env, out, "bytes", Double(env, static_cast<double>(t.bytes))) || !Set(env, out, "references", Double(env, static_cast<double>(t.references))) ||
      !Set(env, out, "created", Double(env, static_cast<double>(t.created))) || !Set(env, out, "freed", Double(env, static_cast<double>(t.freed)))) {
    return Internal(env, "sharedRegionTotals: could not describe the totals");
  }
  return out;
}

bool Export(napi_env env, napi_value exports, const char* name, napi_callback callback, void* data) {
  napi_value fn = nullptr;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, data, &fn) == napi_ok && Set(env, exports, name, fn);
}

}  // namespace

void ExportSharedRegions(napi_env env, napi_value exports) {
  EnvOwner* owner = new (std::nothrow) EnvOwner{next_owner.fetch_add(1)};
  if (owner == nullptr) return;
  if (napi_add_env_cleanup_hook(env, CleanupEnv, owner) != napi_ok) {
    delete owner;
    return;
  }
  // The functions hold the owner as their data; the cleanup hook frees it when the env ends, after which they cannot run.
  Export(env, exports, "sharedRegionCreate", Create, owner) && Export(env, exports, "sharedRegionAttach", Attach, owner) &&
      Export(env, exports, "sharedRegionTotals", Totals, nullptr);
}

}  // namespace slabpool
