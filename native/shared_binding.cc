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
#include <cstdint>
#include <new>
#include <string>

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

Napi::Value Internal(Napi::Env env, const std::string& what) {
  Napi::Error err = Napi::Error::New(env, "slabpool internal error: " + what);
  err.Set("code", Napi::String::New(env, "ERR_SLABPOOL_INTERNAL"));
  err.ThrowAsJavaScriptException();
  return env.Undefined();
}

// A whole number of bytes from 1 to kMaxRegionBytes, or 0.
size_t BytesArg(const Napi::Value& value) {
  if (!value.IsNumber()) return 0;
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= static_cast<double>(sr::kMaxRegionBytes)) || d != static_cast<double>(static_cast<uint64_t>(d))) return 0;
  return static_cast<size_t>(d);
}

// { token, address, buffer } for reference `ref`, its external ArrayBuffer holding the reference;
// a status string (the reference dropped) if the runtime refuses external ArrayBuffers.
Napi::Value Wrap(Napi::Env env, const sr::Reference& ref) {
  napi_value ab;
  const napi_status status = napi_create_external_arraybuffer(env, ref.base, ref.bytes, FinalizeRegionBuffer,
                                                              reinterpret_cast<void*>(static_cast<uintptr_t>(ref.id)), &ab);
  if (status != napi_ok) {
    sr::release(ref.id);
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    if (status == napi_no_external_buffers_allowed) return Napi::String::New(env, "no external buffers");
    return Internal(env, "could not create an external ArrayBuffer over a shared region");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("token", Napi::BigInt::New(env, ref.token));
  out.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ref.base))));
  out.Set("buffer", Napi::Value(env, ab));
  return out;
}

// sharedRegionCreate(bytes, alignment): a new zeroed region -> { token, address, buffer } or "no memory".
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t owner = static_cast<EnvOwner*>(info.Data())->id;
  const size_t bytes = BytesArg(info[0]);
  if (bytes == 0) return Internal(env, "sharedRegionCreate: bytes must be a whole number from 1 to 2^32");
  if (!info[1].IsNumber()) return Internal(env, "sharedRegionCreate: alignment must be a number");
  const double alignment = info[1].As<Napi::Number>().DoubleValue();
  if (!(alignment >= 8 && alignment <= 4096) || alignment != static_cast<double>(static_cast<uint32_t>(alignment))) {
    return Internal(env, "sharedRegionCreate: alignment must be a power of two from 8 to 4096");
  }
  sr::Reference ref{};
  const sr::Status status = sr::create(bytes, static_cast<size_t>(alignment), owner, &ref);
  if (status == sr::Status::kNoMemory) return Napi::String::New(env, "no memory");
  if (status != sr::Status::kOk) return Internal(env, std::string("sharedRegionCreate: ") + sr::status_name(status));
  return Wrap(env, ref);
}

// sharedRegionAttach(token, bytes): another reference to a living region of that size ->
// { token, address, buffer }, or "unknown", "ended", "size mismatch", "no memory".
Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t owner = static_cast<EnvOwner*>(info.Data())->id;
  if (!info[0].IsBigInt()) return Internal(env, "sharedRegionAttach: token must be a bigint");
  bool lossless = false;
  const uint64_t token = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) return Napi::String::New(env, "unknown");
  const size_t bytes = BytesArg(info[1]);
  if (bytes == 0) return Internal(env, "sharedRegionAttach: bytes must be a whole number from 1 to 2^32");
  sr::Reference ref{};
  const sr::Status status = sr::acquire(token, bytes, owner, &ref);
  if (status != sr::Status::kOk) return Napi::String::New(env, sr::status_name(status));
  return Wrap(env, ref);
}

// sharedRegionTotals(): the process's figures (shared_region.h Totals), for stats and leak checks.
Napi::Value Totals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const sr::Totals t = sr::totals();
  Napi::Object out = Napi::Object::New(env);
  out.Set("regions", static_cast<double>(t.regions));
  out.Set("bytes", static_cast<double>(t.bytes));
  out.Set("references", static_cast<double>(t.references));
  out.Set("created", static_cast<double>(t.created));
  out.Set("freed", static_cast<double>(t.freed));
  return out;
}

}  // namespace

void ExportSharedRegions(Napi::Env env, Napi::Object exports) {
  EnvOwner* owner = new (std::nothrow) EnvOwner{next_owner.fetch_add(1)};
  if (owner == nullptr) return;  // no shared regions in this env: lib/ sees the functions missing
  if (napi_add_env_cleanup_hook(env, CleanupEnv, owner) != napi_ok) {
    delete owner;
    return;
  }
  exports.Set("sharedRegionCreate", Napi::Function::New(env, Create, "sharedRegionCreate", owner));
  exports.Set("sharedRegionAttach", Napi::Function::New(env, Attach, "sharedRegionAttach", owner));
  exports.Set("sharedRegionTotals", Napi::Function::New(env, Totals, "sharedRegionTotals"));
}

}  // namespace slabpool
