// Linked into the win32-x64 prebuild by scripts/prebuild-win32.js (mingw-w64), as node-gyp links
// its src/win_delay_load_hook.cc into MSVC builds: the addon imports Node-API from "node.exe"
// through a delay-import library, and this hook answers that import with the module of the
// running process, so the addon binds to the Node that loaded it whatever its executable is
// called (a renamed node.exe, an embedder), and never loads some other node.exe found on the DLL
// search path (that loads a second Node into the process, which crashes it). libnode.dll first,
// for Node built as a DLL.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <delayimp.h>
#include <string.h>

static FARPROC WINAPI load_exe_hook(unsigned int event, DelayLoadInfo* info) {
  if (event != dliNotePreLoadLibrary) return nullptr;
  if (_stricmp(info->szDll, "node.exe") != 0) return nullptr;
  HMODULE m = GetModuleHandleA("libnode.dll");
  if (m == nullptr) m = GetModuleHandleA(nullptr);
  return reinterpret_cast<FARPROC>(m);
}

PfnDliHook __pfnDliNotifyHook2 = load_exe_hook;  // declared extern "C" by delayimp.h
