# FAISS is the peer `igla bench` measures against: a benchmark dependency only. When it is not
# installed the CLI builds without the peer columns.
if(IGLA_BENCH)
  find_path(FAISS_INCLUDE_DIR faiss/IndexFlat.h)
  find_library(FAISS_LIBRARY faiss)
  find_package(BLAS QUIET)
  find_package(LAPACK QUIET)
  if(FAISS_INCLUDE_DIR AND FAISS_LIBRARY AND BLAS_FOUND AND LAPACK_FOUND AND OpenMP_CXX_FOUND)
    message(STATUS "igla bench: FAISS peer enabled (${FAISS_LIBRARY})")
    target_compile_definitions(igla_cli PRIVATE IGLA_HAVE_FAISS=1)
    target_include_directories(igla_cli PRIVATE ${FAISS_INCLUDE_DIR})
    # Debian ships FAISS as a static library: its BLAS, LAPACK and OpenMP come along explicitly.
    target_link_libraries(igla_cli PRIVATE ${FAISS_LIBRARY} ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES} OpenMP::OpenMP_CXX ${CMAKE_DL_LIBS})
  else()
    message(STATUS "igla bench: FAISS not found, peers disabled (apt-get install libfaiss-dev)")
  endif()
endif()

# hnswlib (header-only) is `igla bench-ann`'s graph-index peer; without it the CLI builds without
# that peer.
if(IGLA_BENCH)
  find_path(HNSWLIB_INCLUDE_DIR hnswlib/hnswlib.h)
  if(HNSWLIB_INCLUDE_DIR)
    message(STATUS "igla bench-ann: hnswlib peer enabled (${HNSWLIB_INCLUDE_DIR})")
    target_compile_definitions(igla_cli PRIVATE IGLA_HAVE_HNSWLIB=1)
    target_include_directories(igla_cli SYSTEM PRIVATE ${HNSWLIB_INCLUDE_DIR})
  else()
    message(STATUS "igla bench-ann: hnswlib not found, peer disabled (apt-get install libhnswlib-dev)")
  endif()
endif()
