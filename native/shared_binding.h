// The N-API surface of the shared regions (shared_region.h): SharedPool's native engine keeps its
// blocks in one region, and each thread attached to the pool wraps the region in an external
// ArrayBuffer of its own. See shared_binding.cc for the functions and their lifetimes.
#ifndef SLABPOOL_SHARED_BINDING_H_
#define SLABPOOL_SHARED_BINDING_H_

#include <napi.h>

namespace slabpool {

// Adds sharedRegionCreate, sharedRegionAttach and sharedRegionTotals to `exports`, and registers
// the cleanup hook that drops this env's references when its thread ends.
void ExportSharedRegions(Napi::Env env, Napi::Object exports);

}  // namespace slabpool

#endif  // SLABPOOL_SHARED_BINDING_H_
