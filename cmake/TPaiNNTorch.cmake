# libtorch for tpainn, located through the `torch` Python package of the build environment (libtorch has
# no stable ABI: the extension must be built against the torch it runs with).
#
# Defines the INTERFACE target `tpainn_torch` (headers, the libstdc++ ABI flag, libtorch libraries),
# TPAINN_TORCH_PYTHON_LIBRARY (libtorch_python, for the pybind11 module), TPAINN_TORCH_VERSION and
# TPAINN_WITH_CUDA. As torch's own extension tooling (torch.utils.cpp_extension) does, the targets are made
# here rather than by find_package(Torch): the CPU build links torch, torch_cpu and c10 of any torch, a
# CUDA build of torch included, and needs no CUDA toolkit (find_package(Torch) of a CUDA torch stops
# without one, "Your installed Caffe2 version uses CUDA but I cannot find the CUDA libraries"). Devices
# are chosen at run time through torch, so a CPU build still runs models on the GPU of a CUDA torch.
#
# TPAINN_CUDA (environment or -D): AUTO (default) compiles the CUDA sources (csrc/**/*.cu) with nvcc when
# there are some, torch was built with CUDA and an nvcc of the same CUDA major version is found; 1 requires
# that and fails with the reason otherwise; 0 never uses nvcc.

execute_process(
  COMMAND "${Python_EXECUTABLE}" -c "
import os, pybind11, torch
print(torch.__version__, os.path.dirname(torch.__file__), torch.version.cuda or '',
      int(torch._C._GLIBCXX_USE_CXX11_ABI), pybind11.get_cmake_dir(),
      int('parallel backend: OpenMP' in torch.__config__.parallel_info()), sep=';', end='')"
  OUTPUT_VARIABLE _torch_info ERROR_VARIABLE _torch_err RESULT_VARIABLE _torch_rc)
if(NOT _torch_rc EQUAL 0)
  message(FATAL_ERROR "torch and pybind11 must be importable by ${Python_EXECUTABLE} to build tpainn "
                      "(`pip install .` brings them; with --no-build-isolation install torch first):\n${_torch_err}")
endif()
list(GET _torch_info 0 TPAINN_TORCH_VERSION)
list(GET _torch_info 1 _torch_dir)
list(GET _torch_info 2 _torch_cuda)
list(GET _torch_info 3 _torch_cxx11_abi)
list(GET _torch_info 4 _pybind11_dir)
list(GET _torch_info 5 _torch_openmp)
list(APPEND CMAKE_PREFIX_PATH "${_pybind11_dir}")
set(_torch_lib "${_torch_dir}/lib")

add_library(tpainn_torch INTERFACE)
target_include_directories(tpainn_torch INTERFACE "${_torch_dir}/include" "${_torch_dir}/include/torch/csrc/api/include")
target_compile_definitions(tpainn_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=${_torch_cxx11_abi})
# The C++ standard torch's headers require (C++17 up to torch 2.13, C++20 from 2.14).
file(STRINGS "${_torch_dir}/include/ATen/ATen.h" _needs_cxx20 REGEX "__cplusplus < 202002L")
if(_needs_cxx20)
  set(TPAINN_CXX_STANDARD 20)
else()
  set(TPAINN_CXX_STANDARD 17)
endif()
target_compile_features(tpainn_torch INTERFACE cxx_std_${TPAINN_CXX_STANDARD})
# libtorch.so itself defines nothing we call, but in a CUDA torch it loads libtorch_cuda (torch's CUDA
# kernels and device support): keep it even where the linker drops unused libraries by default.
target_link_libraries(tpainn_torch INTERFACE
  "${_torch_lib}/libtorch_cpu.so" "${_torch_lib}/libc10.so"
  "-Wl,--push-state,--no-as-needed" "${_torch_lib}/libtorch.so" "-Wl,--pop-state")
set(TPAINN_TORCH_PYTHON_LIBRARY "${_torch_lib}/libtorch_python.so")
# Threads of our kernels (at::parallel_for, csrc/ops): under torch's OpenMP backend at::parallel_for is a header
# template over `omp parallel`, so a file compiled without OpenMP runs every range on the calling thread.
# TPAINN_OPENMP_FLAGS compile such files with OpenMP, linked to the runtime torch ships, so that one thread
# pool (sized by torch.set_num_threads) serves torch and us. Torch's other backend (native) needs nothing.
set(TPAINN_OPENMP_FLAGS -fopenmp-simd)
if(NOT _torch_openmp)
  message(STATUS "tpainn: fused kernels run on torch's threads (its native thread pool)")
elseif(EXISTS "${_torch_lib}/libgomp.so.1")
  set(TPAINN_OPENMP_FLAGS -fopenmp)
  target_link_libraries(tpainn_torch INTERFACE "${_torch_lib}/libgomp.so.1")
  message(STATUS "tpainn: fused kernels run on torch's threads (OpenMP, torch's ${_torch_lib}/libgomp.so.1)")
else()
  find_package(OpenMP COMPONENTS CXX)
  if(OpenMP_CXX_FOUND)
    set(TPAINN_OPENMP_FLAGS ${OpenMP_CXX_FLAGS})
    target_link_libraries(tpainn_torch INTERFACE OpenMP::OpenMP_CXX)
    message(STATUS "tpainn: fused kernels run on torch's threads (OpenMP ${OpenMP_CXX_VERSION} of the compiler)")
  else()
    message(WARNING "torch ${TPAINN_TORCH_VERSION} uses OpenMP threads, but no OpenMP was found for the C++ compiler: "
                    "tpainn's fused kernels will run on one thread")
  endif()
endif()
foreach(_lib torch torch_cpu c10 torch_python)
  if(NOT EXISTS "${_torch_lib}/lib${_lib}.so")
    message(FATAL_ERROR "lib${_lib}.so not found in ${_torch_lib} (torch ${TPAINN_TORCH_VERSION})")
  endif()
endforeach()

# ---- CUDA sources: only with nvcc and a CUDA torch.
if(DEFINED ENV{TPAINN_CUDA})
  set(_cuda_mode "$ENV{TPAINN_CUDA}")
elseif(DEFINED TPAINN_CUDA)
  set(_cuda_mode "${TPAINN_CUDA}")
else()
  set(_cuda_mode AUTO)
endif()
string(TOUPPER "${_cuda_mode}" _cuda_mode)
if(_cuda_mode MATCHES "^(1|ON|YES|TRUE)$")
  set(_cuda_mode ON)
elseif(_cuda_mode MATCHES "^(0|OFF|NO|FALSE)$")
  set(_cuda_mode OFF)
elseif(NOT _cuda_mode MATCHES "^(AUTO|)$")
  message(FATAL_ERROR "TPAINN_CUDA must be AUTO, 1 or 0, not '${_cuda_mode}'")
endif()

file(GLOB_RECURSE TPAINN_CUDA_SOURCES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/csrc/*.cu")
list(LENGTH TPAINN_CUDA_SOURCES _n_cuda_sources)
set(TPAINN_WITH_CUDA OFF)
set(_why "")
if(_cuda_mode STREQUAL "OFF")
  set(_why "TPAINN_CUDA=0")
elseif(_torch_cuda STREQUAL "")
  set(_why "torch ${TPAINN_TORCH_VERSION} was built without CUDA")
else()
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    set(_why "no CUDA compiler (nvcc) found")
  else()
    execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --version OUTPUT_VARIABLE _nvcc_out ERROR_QUIET)
    string(REGEX MATCH "release ([0-9]+)\\.([0-9]+)" _ "${_nvcc_out}")
    set(_nvcc_version "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
    set(_nvcc_major "${CMAKE_MATCH_1}")
    string(REGEX MATCH "^[0-9]+" _torch_cuda_major "${_torch_cuda}")
    if(NOT _nvcc_major STREQUAL _torch_cuda_major)
      set(_why "${CMAKE_CUDA_COMPILER} is CUDA ${_nvcc_version}, torch was built with CUDA ${_torch_cuda}")
    elseif(_cuda_mode STREQUAL "AUTO" AND _n_cuda_sources EQUAL 0)
      set(_why "no CUDA sources to compile")
    else()
      set(TPAINN_WITH_CUDA ON)
    endif()
  endif()
endif()

if(TPAINN_WITH_CUDA)
  # The CMake default: the CUDA runtime linked statically, so that `lmp` (which never imports torch) needs
  # no path to the runtime of the nvidia-* wheels; torch's own CUDA libraries find theirs by their RPATH.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
    set(CMAKE_CUDA_ARCHITECTURES all-major)  # set CUDAARCHS (e.g. 90) to build for one GPU only
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(CMAKE_CUDA_STANDARD ${TPAINN_CXX_STANDARD})
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  target_link_libraries(tpainn_torch INTERFACE "${_torch_lib}/libc10_cuda.so" "${_torch_lib}/libtorch_cuda.so"
                                               CUDA::cudart_static)
  target_compile_definitions(tpainn_torch INTERFACE TPAINN_WITH_CUDA)
  # As torch.utils.cpp_extension compiles CUDA sources.
  set(TPAINN_CUDA_FLAGS -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__
      -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ --expt-relaxed-constexpr)
  message(STATUS "tpainn: CUDA build (C++${TPAINN_CXX_STANDARD}) against torch ${TPAINN_TORCH_VERSION} (${_torch_dir}), "
                 "nvcc ${_nvcc_version}, ${_n_cuda_sources} CUDA source(s), architectures ${CMAKE_CUDA_ARCHITECTURES}")
elseif(_cuda_mode STREQUAL "ON")
  message(FATAL_ERROR "TPAINN_CUDA=1, but the CUDA sources cannot be built: ${_why}. "
                      "Install a CUDA toolkit matching torch (or set CUDACXX to its nvcc), or unset TPAINN_CUDA.")
else()
  if(NOT _torch_cuda STREQUAL "")
    set(_why "${_why}; device=cuda runs through torch's CUDA ${_torch_cuda} libraries")
  endif()
  message(STATUS "tpainn: CPU build (C++${TPAINN_CXX_STANDARD}) against torch ${TPAINN_TORCH_VERSION} (${_torch_dir}): ${_why}")
endif()
