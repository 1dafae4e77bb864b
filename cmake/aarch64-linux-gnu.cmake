# Cross-compiling to Linux/AArch64 with Debian's g++-aarch64-linux-gnu; tests run under
# qemu-aarch64 (scripts/cross-test-aarch64.sh uses this file).
#
# IGLA_AARCH64_DEPS: a directory holding the arm64 dependencies extracted from their Debian
# packages (usr/include, usr/lib/aarch64-linux-gnu); searched instead of the host's libraries.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# The dependencies come from IGLA_AARCH64_DEPS and the cross toolchain's own root, never from
# the host (its x86-64 libraries and, for header-only packages, its /usr/include).
set(IGLA_AARCH64_DEPS "" CACHE PATH "arm64 dependencies extracted from their .debs")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES IGLA_AARCH64_DEPS)
set(CMAKE_FIND_ROOT_PATH ${IGLA_AARCH64_DEPS} /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Run target programs (gtest_discover_tests at build time, ctest) under user-mode QEMU, with
# the toolchain's libc and the extracted libraries. QEMU's default CPU ("max") has every
# extension it emulates, dotprod included, so every NEON kernel runs.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu
    -E LD_LIBRARY_PATH=${IGLA_AARCH64_DEPS}/usr/lib/aarch64-linux-gnu)
