# cpp-httplib 0.18.7 from Debian 13's patched source (toolchains/cpp-httplib.sh),
# header-only, so the project decides how it is built. Every target that
# includes <httplib.h> links tokenmeter::httplib and so sees the same macros
# (one definition of each inline function across the program).
#
# What is chosen here, and why:
# - no CPPHTTPLIB_ZLIB_SUPPORT / CPPHTTPLIB_BROTLI_SUPPORT: a request body is
#   never inflated (a 1 MB gzip body once became 1 GiB of memory before routing);
#   a request with Content-Encoding is refused with 415 instead;
# - CPPHTTPLIB_USE_POLL: select() cannot watch a descriptor above 1023, and
#   httplib answers 500 on such a connection; the server holds thousands;
# - CPPHTTPLIB_HEADER_MAX_COUNT 64 and CPPHTTPLIB_HEADER_MAX_LENGTH 8 KiB: the
#   API needs a handful of headers; the edge (server/http/edge) enforces the
#   same bounds on the bytes of a request head before httplib parses it;
# - CPPHTTPLIB_LISTEN_BACKLOG 1024: a burst of new connections waits in the
#   kernel's accept queue instead of being reset;
# - CPPHTTPLIB_OPENSSL_SUPPORT: the clients (JWKS keys, the LemonSqueezy API)
#   speak https and verify certificates.
set(TM_HTTPLIB_ROOT "${PROJECT_SOURCE_DIR}/build/deps/cpp-httplib"
    CACHE PATH "cpp-httplib 0.18.7 from Debian's patched source (toolchains/cpp-httplib.sh)")
if(NOT EXISTS "${TM_HTTPLIB_ROOT}/include/httplib.h")
  message(FATAL_ERROR "cpp-httplib is missing: run toolchains/cpp-httplib.sh (make does this).")
endif()
file(STRINGS "${TM_HTTPLIB_ROOT}/include/httplib.h" tm_httplib_version REGEX "#define CPPHTTPLIB_VERSION ")
if(NOT tm_httplib_version MATCHES "\"0\\.18\\.7\"")
  message(FATAL_ERROR "${TM_HTTPLIB_ROOT}/include/httplib.h is not cpp-httplib 0.18.7: run toolchains/cpp-httplib.sh")
endif()
add_library(tm_httplib INTERFACE)
target_include_directories(tm_httplib SYSTEM INTERFACE "${TM_HTTPLIB_ROOT}/include")
target_compile_definitions(tm_httplib INTERFACE
  CPPHTTPLIB_OPENSSL_SUPPORT
  CPPHTTPLIB_USE_POLL
  CPPHTTPLIB_HEADER_MAX_COUNT=64
  CPPHTTPLIB_HEADER_MAX_LENGTH=8192
  CPPHTTPLIB_LISTEN_BACKLOG=1024)
target_link_libraries(tm_httplib INTERFACE OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
add_library(tokenmeter::httplib ALIAS tm_httplib)
