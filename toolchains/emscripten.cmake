# Emscripten's own platform file: from an emsdk when EMSDK is set, else Debian's.
if(DEFINED ENV{EMSDK})
  include("$ENV{EMSDK}/upstream/emscripten/cmake/Modules/Platform/Emscripten.cmake")
else()
  include("/usr/share/emscripten/cmake/Modules/Platform/Emscripten.cmake")
endif()
