# Provides the target AWS::aws-c-s3 (and its dependencies) for the native module.
#
# Where the CRT comes from, first match wins:
#   1. an installed aws-c-s3 CMake package (conda-forge, vcpkg, a prefix on CMAKE_PREFIX_PATH);
#   2. a source tree holding the CRT C libraries (S3TC_CRT_SOURCE_DIR, cache or environment variable);
#   3. the crt/ folder of the pinned awscrt source distribution from PyPI, checked by sha256.
# Cases 2 and 3 build the libraries static and position-independent, against the
# system libcrypto unless S3TC_BUILD_AWS_LC is ON.

set(S3TC_AWSCRT_VERSION "0.38.0")
set(S3TC_AWSCRT_SHA256 "4a8423c4a76390c6e5c4f386e3e367dccdcf67d6d1a0bc1c59776bb14cdc2ad9")

option(S3TC_BUILD_AWS_LC "Build aws-lc for libcrypto instead of using the system's OpenSSL libcrypto" OFF)
option(S3TC_USE_INSTALLED_CRT "Look for an installed aws-c-s3 before building one" ON)
set(S3TC_CRT_SOURCE_DIR "$ENV{S3TC_CRT_SOURCE_DIR}" CACHE PATH "Folder holding aws-c-common, aws-c-s3, s2n, ... sources")

if(S3TC_USE_INSTALLED_CRT AND NOT S3TC_CRT_SOURCE_DIR)
    find_package(aws-c-s3 CONFIG QUIET)
    if(aws-c-s3_FOUND)
        message(STATUS "s3torchconnector: using installed aws-c-s3 from ${aws-c-s3_DIR}")
        return()
    endif()
endif()

function(s3tc_fetch_awscrt_sdist out_dir)
    set(work "${CMAKE_BINARY_DIR}/_awscrt")
    set(archive "${work}/awscrt-${S3TC_AWSCRT_VERSION}.tar.gz")
    set(tree "${work}/awscrt-${S3TC_AWSCRT_VERSION}")
    if(NOT EXISTS "${tree}/crt/aws-c-s3/CMakeLists.txt")
        if(NOT EXISTS "${archive}")
            message(STATUS "s3torchconnector: downloading awscrt ${S3TC_AWSCRT_VERSION} source distribution")
            find_package(Python COMPONENTS Interpreter REQUIRED)
            execute_process(
                COMMAND "${Python_EXECUTABLE}" -m pip download --no-deps --no-binary :all:
                        "awscrt==${S3TC_AWSCRT_VERSION}" -d "${work}"
                RESULT_VARIABLE rc)
            if(NOT rc EQUAL 0 OR NOT EXISTS "${archive}")
                message(FATAL_ERROR "Could not download awscrt==${S3TC_AWSCRT_VERSION} with pip. "
                    "Give a CRT source tree with -DS3TC_CRT_SOURCE_DIR=... or install aws-c-s3.")
            endif()
        endif()
        file(SHA256 "${archive}" digest)
        if(NOT digest STREQUAL S3TC_AWSCRT_SHA256)
            file(REMOVE "${archive}")
            message(FATAL_ERROR "awscrt sdist hash mismatch: got ${digest}, pinned ${S3TC_AWSCRT_SHA256}")
        endif()
        file(ARCHIVE_EXTRACT INPUT "${archive}" DESTINATION "${work}")
    endif()
    set(${out_dir} "${tree}/crt" PARENT_SCOPE)
endfunction()

if(S3TC_CRT_SOURCE_DIR)
    set(crt_dir "${S3TC_CRT_SOURCE_DIR}")
else()
    s3tc_fetch_awscrt_sdist(crt_dir)
endif()
message(STATUS "s3torchconnector: building the CRT from ${crt_dir}")

# The CRT's own CMake supports building all libraries in one tree when IN_SOURCE_BUILD is set.
set(IN_SOURCE_BUILD ON CACHE BOOL "" FORCE)
set(BUILD_TESTING OFF CACHE BOOL "" FORCE)
set(BUILD_SHARED_LIBS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
list(APPEND CMAKE_MODULE_PATH "${crt_dir}/aws-c-common/cmake")
include(AwsFindPackage)
include(AwsPrebuildDependency)

# s2n (TLS) reads libcrypto while it configures, so it is built and installed at configure time.
if(S3TC_BUILD_AWS_LC)
    set(USE_OPENSSL OFF CACHE BOOL "" FORCE)
    if(NOT AWSLC_PREBUILT)
        aws_prebuild_dependency(DEPENDENCY_NAME AWSLC SOURCE_DIR "${crt_dir}/aws-lc"
            CMAKE_ARGUMENTS -DDISABLE_GO=ON -DDISABLE_PERL=ON -DBUILD_LIBSSL=OFF -DBUILD_TESTING=OFF)
    endif()
else()
    set(USE_OPENSSL ON CACHE BOOL "" FORCE)
endif()
if(NOT S2N_PREBUILT)
    aws_prebuild_dependency(DEPENDENCY_NAME S2N SOURCE_DIR "${crt_dir}/s2n"
        CMAKE_ARGUMENTS -DUNSAFE_TREAT_WARNINGS_AS_ERRORS=OFF -DBUILD_TESTING=OFF -DS2N_NO_PQ=OFF)
else()
    # A later configure of the same build dir reuses the install made the first time.
    list(INSERT CMAKE_PREFIX_PATH 0 "${CMAKE_BINARY_DIR}/deps/S2N/install/")
    if(S3TC_BUILD_AWS_LC)
        list(INSERT CMAKE_PREFIX_PATH 0 "${CMAKE_BINARY_DIR}/deps/AWSLC/install/")
    endif()
endif()

foreach(lib aws-c-common aws-c-sdkutils aws-c-cal aws-c-io aws-checksums
            aws-c-compression aws-c-http aws-c-auth aws-c-s3)
    add_subdirectory("${crt_dir}/${lib}" "${CMAKE_BINARY_DIR}/crt/${lib}" EXCLUDE_FROM_ALL)
endforeach()
add_library(AWS::aws-c-s3 ALIAS aws-c-s3)
