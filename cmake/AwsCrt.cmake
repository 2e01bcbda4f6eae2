# Provides the target AWS::aws-c-s3 (and its dependencies) for the native module.
#
# Where the CRT comes from, first match wins:
#   1. an installed aws-c-s3 CMake package (conda-forge, vcpkg, a prefix on CMAKE_PREFIX_PATH) of the release
#      cpp/crt_internals.h was checked against (any release with S3TC_ALLOW_OTHER_CRT);
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
option(S3TC_ALLOW_OTHER_CRT "Build against an aws-c-s3 other than the checked one, with the in-place landing off" OFF)
set(S3TC_CRT_SOURCE_DIR "$ENV{S3TC_CRT_SOURCE_DIR}" CACHE PATH "Folder holding aws-c-common, aws-c-s3, s2n, ... sources")

# cpp/crt_internals.h lists what the module copies from, or relies on in, aws-c-s3's private code, checked against
# one release, which it names. Another release is refused, or with S3TC_ALLOW_OTHER_CRT built with S3TC_CRT_CHECKED
# off: the features resting on those copies are switched off, and the build says so.
file(STRINGS "${CMAKE_CURRENT_LIST_DIR}/../cpp/crt_internals.h" checked_line
    REGEX "^#define S3TC_CHECKED_AWS_C_S3_VERSION ")
string(REGEX REPLACE ".*\"(.*)\".*" "\\1" S3TC_CHECKED_AWS_C_S3_VERSION "${checked_line}")
set(S3TC_CRT_CHECKED ON)

function(s3tc_check_crt_version version what)
    if(version STREQUAL S3TC_CHECKED_AWS_C_S3_VERSION)
        return()
    endif()
    string(CONCAT text "s3torchconnector: ${what} is aws-c-s3 '${version}', but cpp/crt_internals.h was checked against "
        "aws-c-s3 ${S3TC_CHECKED_AWS_C_S3_VERSION}.")
    if(S3TC_ALLOW_OTHER_CRT)
        message(WARNING "${text} S3TC_ALLOW_OTHER_CRT is set: whole-object reads are built without in-place landing "
            "(each part is copied into place instead).")
        set(S3TC_CRT_CHECKED OFF PARENT_SCOPE)
    else()
        message(FATAL_ERROR "${text} Check each item listed there against that release and update the version "
            "line, or pass -DS3TC_ALLOW_OTHER_CRT=ON to build with the features resting on them off.")
    endif()
endfunction()

if(S3TC_USE_INSTALLED_CRT AND NOT S3TC_CRT_SOURCE_DIR)
    if(S3TC_ALLOW_OTHER_CRT)
        find_package(aws-c-s3 CONFIG QUIET)
    else()
        find_package(aws-c-s3 ${S3TC_CHECKED_AWS_C_S3_VERSION} EXACT CONFIG QUIET)
        if(NOT aws-c-s3_FOUND AND aws-c-s3_CONSIDERED_VERSIONS)
            message(STATUS "s3torchconnector: the installed aws-c-s3 (${aws-c-s3_CONSIDERED_VERSIONS}) is not "
                "${S3TC_CHECKED_AWS_C_S3_VERSION}, the release cpp/crt_internals.h was checked against: building "
                "the pinned CRT instead")
        endif()
    endif()
    if(aws-c-s3_FOUND)
        message(STATUS "s3torchconnector: using installed aws-c-s3 ${aws-c-s3_VERSION} from ${aws-c-s3_DIR}")
        s3tc_check_crt_version("${aws-c-s3_VERSION}" "the installed aws-c-s3")
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
file(STRINGS "${crt_dir}/aws-c-s3/VERSION" crt_version LIMIT_COUNT 1)
s3tc_check_crt_version("${crt_version}" "the CRT in ${crt_dir}")
message(STATUS "s3torchconnector: building the CRT from ${crt_dir} (aws-c-s3 ${crt_version})")

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
