// A minimal node-addon-api consumer of slabpool blocks (not part of the package):
//   sum(float64array)               the sum, on this thread
//   sumAsync(float64array, delayMs) a Promise of the sum, read on a worker thread after delayMs
//   hasAvx2                         whether this CPU runs the aligned AVX2 loop
// Both report the data pointer (address), the largest power of two dividing it (alignment), and
// which loop ran (path): aligned AVX2 loads where the CPU has AVX2 and the pointer is 32-byte
// aligned ('avx2-aligned'), a scalar loop otherwise ('scalar'). _mm256_load_pd faults on an
// address that is not 32-byte aligned, so the check is what makes the fast loop safe.
#include <napi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define INTEROP_X86 1
#endif

namespace {

struct Sum {
  double value = 0;
  const char* path = "scalar";
  uint64_t address = 0;
  double alignment = 0;  // largest power of two dividing address; 0 for a null pointer
};

// In index order, as a JavaScript loop adds: without -ffast-math the compiler keeps that order,
// so this path gives exactly the JavaScript sum.
double SumScalar(const double* p, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += p[i];
  return s;
}

#ifdef INTEROP_X86
// Four lanes, so the additions come in another order than SumScalar's: equal results for data
// whose partial sums are exact (integers below 2^53), within rounding otherwise.
__attribute__((target("avx2"))) double SumAvx2Aligned(const double* p, size_t n) {
  __m256d acc = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 4 <= n; i += 4) acc = _mm256_add_pd(acc, _mm256_load_pd(p + i));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, acc);
  double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; i++) s += p[i];
  return s;
}

bool CpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
#endif

bool HasAvx2() {
#ifdef INTEROP_X86
  static const bool has = CpuHasAvx2();
  return has;
#else
  return false;
#endif
}

Sum SumOf(const double* p, size_t n) {
  Sum sum;
  sum.address = reinterpret_cast<uintptr_t>(p);
  sum.alignment = static_cast<double>(sum.address & (~sum.address + 1));
#ifdef INTEROP_X86
  if (HasAvx2() && sum.address != 0 && sum.address % 32 == 0) {
    sum.value = SumAvx2Aligned(p, n);
    sum.path = "avx2-aligned";
    return sum;
  }
#endif
  sum.value = SumScalar(p, n);
  return sum;
}

Napi::Object ToObject(Napi::Env env, const Sum& sum) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("sum", Napi::Number::New(env, sum.value));
  out.Set("path", Napi::String::New(env, sum.path));
  out.Set("address", Napi::BigInt::New(env, sum.address));
  out.Set("alignment", Napi::Number::New(env, sum.alignment));
  return out;
}

// The first argument as a Float64Array, or false with a TypeError pending.
bool ArrayArg(const Napi::CallbackInfo& info, Napi::Float64Array* out) {
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    Napi::TypeError::New(info.Env(), "Expected a Float64Array for array").ThrowAsJavaScriptException();
    return false;
  }
  *out = info[0].As<Napi::Float64Array>();
  return true;
}

Napi::Value SumSync(const Napi::CallbackInfo& info) {
  Napi::Float64Array array;
  if (!ArrayArg(info, &array)) return info.Env().Undefined();
  return ToObject(info.Env(), SumOf(array.Data(), array.ElementLength()));
}

// Reads the array's memory on a libuv worker thread, delayMs after the call returned. The
// reference keeps the typed array (so its ArrayBuffer) from being collected meanwhile; it cannot
// keep the pool from releasing the memory under it (destroy(), trim()): that is what a pin is for.
class SumWorker : public Napi::AsyncWorker {
 public:
  SumWorker(Napi::Env env, Napi::Float64Array array, uint32_t delay_ms)
      : Napi::AsyncWorker(env, "slabpoolInteropSum"),
        deferred_(Napi::Promise::Deferred::New(env)),
        array_(Napi::Persistent(array)),
        data_(array.Data()),
        length_(array.ElementLength()),
        delay_ms_(delay_ms) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    result_ = SumOf(data_, length_);
  }

  void OnOK() override { deferred_.Resolve(ToObject(Env(), result_)); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Float64Array> array_;
  const double* data_;
  size_t length_;
  uint32_t delay_ms_;
  Sum result_;
};

Napi::Value SumAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float64Array array;
  if (!ArrayArg(info, &array)) return env.Undefined();
  double delay = info.Length() < 2 || info[1].IsUndefined() ? 0 : -1;
  if (info.Length() >= 2 && info[1].IsNumber()) delay = info[1].As<Napi::Number>().DoubleValue();
  if (!(delay >= 0 && delay <= 60000)) {
    Napi::RangeError::New(env, "Expected a number from 0 to 60000 for delayMs").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* worker = new SumWorker(env, array, static_cast<uint32_t>(delay));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sum", Napi::Function::New(env, SumSync, "sum"));
  exports.Set("sumAsync", Napi::Function::New(env, SumAsync, "sumAsync"));
  exports.Set("hasAvx2", Napi::Boolean::New(env, HasAvx2()));
  return exports;
}

}  // namespace

NODE_API_MODULE(interop_sum, Init)
