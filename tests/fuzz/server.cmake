# libFuzzer target for the server's request path (tests/fuzz/fuzz_server_request.cpp), built with
# -DIGLA_FUZZ=ON and clang. Included from the top-level CMakeLists.txt; self-contained so it sits
# beside the other fuzz targets' CMake without touching it.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "IGLA_FUZZ=ON needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
endif()
set(IGLA_FUZZ_SANITIZERS "address,undefined" CACHE STRING "Sanitizers for the fuzz targets")
# The request path itself is instrumented for coverage; the target links libFuzzer's main.
target_compile_options(igla_server PRIVATE -fsanitize=fuzzer-no-link,${IGLA_FUZZ_SANITIZERS})
add_executable(fuzz_server_request ${CMAKE_CURRENT_LIST_DIR}/fuzz_server_request.cpp)
target_link_libraries(fuzz_server_request PRIVATE igla_server)
target_compile_options(fuzz_server_request PRIVATE -fsanitize=fuzzer,${IGLA_FUZZ_SANITIZERS})
target_link_options(fuzz_server_request PRIVATE -fsanitize=fuzzer,${IGLA_FUZZ_SANITIZERS})
target_link_options(igla_server INTERFACE -fsanitize=${IGLA_FUZZ_SANITIZERS})
# Beside the other fuzz_* binaries: scripts/fuzz.sh runs $BUILD/tests/fuzz/fuzz_<corpus folder>.
set_target_properties(fuzz_server_request PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/fuzz)
