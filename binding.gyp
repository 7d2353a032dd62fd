{
  "targets": [
    {
      "target_name": "slabpool",
      "sources": ["native/run_index.cc", "native/slab.cc", "native/shared_region.cc", "native/shared_binding.cc", "native/binding.cc"],
      "conditions": [
        ["OS=='win'", { "sources": ["native/os_windows.cc"] }, { "sources": ["native/os_posix.cc"] }]
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "SLABPOOL_SOURCE_HASH=\"<!(node scripts/source-hash.js)\""
      ],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-Wall", "-Wextra", "-Werror"]
      }
    }
  ]
}
