# Third-party libraries as imported targets, native (Debian packages) and wasm
# (headers reused, libsodium built from Debian's source by toolchains/).

if(EMSCRIPTEN)
  # Never put /usr/include on an Emscripten include path (it would pull in
  # glibc headers): expose only nlohmann's directory through a private copy.
  find_path(TM_NLOHMANN_DIR nlohmann/json.hpp PATHS /usr/include NO_CMAKE_FIND_ROOT_PATH REQUIRED)
  set(tm_header_root "${CMAKE_BINARY_DIR}/third_party/include")
  file(MAKE_DIRECTORY "${tm_header_root}")
  file(COPY "${TM_NLOHMANN_DIR}/nlohmann" DESTINATION "${tm_header_root}")
  add_library(tm_nlohmann_json INTERFACE)
  target_include_directories(tm_nlohmann_json SYSTEM INTERFACE "${tm_header_root}")
  add_library(nlohmann_json::nlohmann_json ALIAS tm_nlohmann_json)

  set(TM_LIBSODIUM_WASM_ROOT "${PROJECT_SOURCE_DIR}/build/deps/libsodium-wasm"
      CACHE PATH "libsodium built for wasm (toolchains/libsodium-wasm.sh)")
  if(NOT EXISTS "${TM_LIBSODIUM_WASM_ROOT}/lib/libsodium.a")
    message(FATAL_ERROR "libsodium for wasm is missing: run toolchains/libsodium-wasm.sh (make does this).")
  endif()
  add_library(tm_sodium STATIC IMPORTED)
  set_target_properties(tm_sodium PROPERTIES
    IMPORTED_LOCATION "${TM_LIBSODIUM_WASM_ROOT}/lib/libsodium.a"
    INTERFACE_INCLUDE_DIRECTORIES "${TM_LIBSODIUM_WASM_ROOT}/include")
  add_library(tokenmeter::sodium ALIAS tm_sodium)
else()
  find_package(nlohmann_json 3.10 REQUIRED)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(sodium REQUIRED IMPORTED_TARGET GLOBAL libsodium)
  add_library(tokenmeter::sodium ALIAS PkgConfig::sodium)
  if(TM_BUILD_SERVER)
    pkg_check_modules(sqlite3 REQUIRED IMPORTED_TARGET GLOBAL sqlite3)
    pkg_check_modules(libpq REQUIRED IMPORTED_TARGET GLOBAL libpq)
    pkg_check_modules(tcmalloc REQUIRED IMPORTED_TARGET GLOBAL libtcmalloc_minimal)
    find_package(OpenSSL REQUIRED)
    find_package(Threads REQUIRED)
    include(cmake/httplib.cmake)
  endif()
endif()
