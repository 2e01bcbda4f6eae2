# Puts the pinned awscrt source distribution (cmake/awscrt.pin) at third_party/awscrt-<version>.tar.gz
# and checks its sha256. An archive already there (an sdist carries one) is used without the network.
#
# Included by cmake/AwsCrt.cmake, and run on its own by the sdist build (backend/):
#   cmake -DS3TC_SOURCE_DIR=<checkout> -P cmake/FetchAwsCrt.cmake

function(s3tc_read_awscrt_pin source_dir)
    file(STRINGS "${source_dir}/cmake/awscrt.pin" pin_lines REGEX "^[a-z0-9]+=")
    foreach(line IN LISTS pin_lines)
        string(REGEX MATCH "^([a-z0-9]+)=(.*)$" _ "${line}")
        set(S3TC_AWSCRT_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}" PARENT_SCOPE)
    endforeach()
endfunction()

function(s3tc_fetch_awscrt_archive source_dir out_archive)
    s3tc_read_awscrt_pin("${source_dir}")
    set(dir "${source_dir}/third_party")
    set(archive "${dir}/awscrt-${S3TC_AWSCRT_version}.tar.gz")
    if(NOT EXISTS "${archive}")
        message(STATUS "s3torchconnector: downloading awscrt ${S3TC_AWSCRT_version} source distribution")
        find_package(Python COMPONENTS Interpreter REQUIRED)
        execute_process(
            COMMAND "${Python_EXECUTABLE}" -m pip download --no-deps --no-binary :all:
                    "awscrt==${S3TC_AWSCRT_version}" -d "${dir}"
            RESULT_VARIABLE rc)
        if(NOT rc EQUAL 0 OR NOT EXISTS "${archive}")
            message(FATAL_ERROR "Could not download awscrt==${S3TC_AWSCRT_version} with pip. "
                "Put its source distribution at ${archive}, give a CRT source tree with "
                "-DS3TC_CRT_SOURCE_DIR=..., or install aws-c-s3 (README: Building).")
        endif()
    endif()
    file(SHA256 "${archive}" digest)
    if(NOT digest STREQUAL S3TC_AWSCRT_sha256)
        file(REMOVE "${archive}")
        message(FATAL_ERROR "awscrt sdist hash mismatch: got ${digest}, pinned ${S3TC_AWSCRT_sha256} "
            "(cmake/awscrt.pin); the file was removed, build again to download it afresh.")
    endif()
    set(${out_archive} "${archive}" PARENT_SCOPE)
endfunction()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
    if(NOT S3TC_SOURCE_DIR)
        message(FATAL_ERROR "usage: cmake -DS3TC_SOURCE_DIR=<checkout> -P ${CMAKE_CURRENT_LIST_FILE}")
    endif()
    s3tc_fetch_awscrt_archive("${S3TC_SOURCE_DIR}" archive)
    message(STATUS "s3torchconnector: ${archive}")
endif()
