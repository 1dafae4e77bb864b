# The CUDA backend lives in src/cuda/ and is compiled only when nvcc is available; nothing
# outside that folder includes CUDA headers. The library always has make_cuda_searcher(): without
# CUDA it reports that the backend was not built.
set(IGLA_HAVE_CUDA OFF)
if(NOT IGLA_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(IGLA_HAVE_CUDA ON)
  elseif(IGLA_CUDA STREQUAL "ON")
    message(FATAL_ERROR "IGLA_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()

if(IGLA_HAVE_CUDA)
  enable_language(CUDA)
  # The kernels use Hopper's wgmma and bulk copies: sm_90a only (H100, H200). enable_language()
  # sets CMAKE_CUDA_ARCHITECTURES to nvcc's own default, so the target gets its own setting.
  set(IGLA_CUDA_ARCHITECTURES 90a CACHE STRING "CUDA architectures of the igla kernels")
  find_package(CUDAToolkit REQUIRED)
  # CMake < 3.26 does not know that nvcc >= 12 takes -std=c++20 (the project is C++20 throughout).
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  file(GLOB IGLA_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cuda/*.cu ${PROJECT_SOURCE_DIR}/src/cuda/*.cpp)
  target_sources(igla PRIVATE ${IGLA_CUDA_SOURCES})
  target_compile_definitions(igla PRIVATE IGLA_HAVE_CUDA=1)
  target_link_libraries(igla PRIVATE CUDA::cudart_static)
  set_target_properties(igla PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  set_target_properties(igla PROPERTIES CUDA_ARCHITECTURES "${IGLA_CUDA_ARCHITECTURES}")
  # The top-level add_compile_options() holds GCC flags that nvcc rejects: keep them for C++
  # sources, and give the CUDA sources their own. -fmad=false: no FMA contraction, so every score
  # is the same float expression as the scalar reference (the kernels also use _rn intrinsics).
  get_target_property(_igla_opts igla COMPILE_OPTIONS)
  if(_igla_opts)
    set(_igla_wrapped "")
    foreach(_o IN LISTS _igla_opts)
      list(APPEND _igla_wrapped "$<$<COMPILE_LANGUAGE:CXX>:${_o}>")
    endforeach()
    set_property(TARGET igla PROPERTY COMPILE_OPTIONS ${_igla_wrapped})
  endif()
  target_compile_options(igla PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-fmad=false -Xcompiler=-Wall,-Wextra,-ffp-contract=off -Xptxas=-warn-spills>)
  # Timing driver for scripts/gpu/run_all.sh (not installed; needs a GPU to run).
  add_executable(igla_cuda_bench ${PROJECT_SOURCE_DIR}/scripts/gpu/cuda_bench.cpp ${PROJECT_SOURCE_DIR}/tools/igla/cuda_env.cpp)
  target_include_directories(igla_cuda_bench PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tools/igla)
  target_link_libraries(igla_cuda_bench PRIVATE igla CUDA::cuda_driver)  # cuProfilerStart
  message(STATUS "igla: CUDA backend enabled (${CMAKE_CUDA_COMPILER}, arch ${IGLA_CUDA_ARCHITECTURES})")
else()
  message(STATUS "igla: CUDA backend not built (IGLA_CUDA=${IGLA_CUDA})")
endif()
