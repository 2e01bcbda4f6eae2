# Provides the target AWS::aws-c-s3 (and its dependencies) for the native module.
#
# Where the CRT comes from, first match wins:
#   1. an installed aws-c-s3 CMake package (conda-forge, vcpkg, a prefix on CMAKE_PREFIX_PATH);
#   2. a source tree holding the CRT C libraries (S3TC_CRT_SOURCE_DIR, cache or environment variable);
#   3. the crt/ folder of the pinned awscrt source distribution from PyPI, checked by sha256
#      (cmake/FetchAwsCrt.cmake; an sdist carries the archive, so it builds offline), with two changes
#      (cmake/PatchAwsCrt.cmake). Cases 1 and 2 lack them, and the build warns so.
# Cases 2 and 3 build the libraries static and position-independent, against the
# system libcrypto unless S3TC_BUILD_AWS_LC is ON.

include("${CMAKE_CURRENT_LIST_DIR}/FetchAwsCrt.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/PatchAwsCrt.cmake")

option(S3TC_BUILD_AWS_LC "Build aws-lc for libcrypto instead of using the system's OpenSSL libcrypto" OFF)
option(S3TC_USE_INSTALLED_CRT "Look for an installed aws-c-s3 before building one" ON)
set(S3TC_CRT_SOURCE_DIR "$ENV{S3TC_CRT_SOURCE_DIR}" CACHE PATH "Folder holding aws-c-common, aws-c-s3, s2n, ... sources")

if(S3TC_USE_INSTALLED_CRT AND NOT S3TC_CRT_SOURCE_DIR)
    find_package(aws-c-s3 CONFIG QUIET)
    if(aws-c-s3_FOUND)
        message(STATUS "s3torchconnector: using installed aws-c-s3 from ${aws-c-s3_DIR}")
        s3tc_warn_unchanged_crt("the installed aws-c-s3")
        return()
    endif()
endif()

# Unpacks the crt/ folder of the pinned archive into the build tree and changes it (PatchAwsCrt.cmake), once per
# build tree and version of those changes: a tree changed otherwise is unpacked anew.
function(s3tc_unpack_awscrt out_dir)
    s3tc_fetch_awscrt_archive("${PROJECT_SOURCE_DIR}" archive)
    set(work "${CMAKE_BINARY_DIR}/_awscrt")
    string(REGEX REPLACE "\\.tar\\.gz$" "" tree "${archive}")
    get_filename_component(tree "${tree}" NAME)
    set(tree "${work}/${tree}")
    file(SHA256 "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/PatchAwsCrt.cmake" changes)
    set(stamp "${tree}/s3tc-changes.sha256")
    set(applied "")
    if(EXISTS "${stamp}")
        file(READ "${stamp}" applied)
    endif()
    if(NOT applied STREQUAL changes)
        file(REMOVE_RECURSE "${tree}")
        file(ARCHIVE_EXTRACT INPUT "${archive}" DESTINATION "${work}")
        s3tc_patch_awscrt("${tree}/crt")
        file(WRITE "${stamp}" "${changes}")
    endif()
    set(${out_dir} "${tree}/crt" PARENT_SCOPE)
endfunction()

if(S3TC_CRT_SOURCE_DIR)
    set(crt_dir "${S3TC_CRT_SOURCE_DIR}")
    s3tc_warn_unchanged_crt("the CRT sources in ${S3TC_CRT_SOURCE_DIR}")
else()
    s3tc_unpack_awscrt(crt_dir)
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
