// The N-API surface of the shared regions (shared_region.h): SharedPool's native engine keeps its
// blocks in one region, and each thread attached to the pool wraps the region in an external
// ArrayBuffer of its own. See shared_binding.cc for the functions and their lifetimes. Written to
// the C API of node_api.h: the same functions through node-addon-api came to some 60 KB of inlined
// wrappers in every prebuild.
#ifndef SLABPOOL_SHARED_BINDING_H_
#define SLABPOOL_SHARED_BINDING_H_

#include <node_api.h>

namespace slabpool {

// Adds sharedRegionCreate, sharedRegionAttach and sharedRegionTotals to `exports`, and registers
// the cleanup hook that drops this env's references when its thread ends. Leaves them out (lib/
// then sees no usable addon) if any step fails.
void ExportSharedRegions(napi_env env, napi_value exports);

}  // namespace slabpool

#endif  // SLABPOOL_SHARED_BINDING_H_
