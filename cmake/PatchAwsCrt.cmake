# The changes made to the pinned CRT sources, applied when they are unpacked (cmake/AwsCrt.cmake, case 3). A CRT
# built elsewhere (an installed aws-c-s3, S3TC_CRT_SOURCE_DIR) is not changed.
#
# Each replaced text must be found exactly as written, so a CRT bump that moves it fails the build here instead of
# dropping the change quietly. The sources are unpacked anew whenever this file changes (AwsCrt.cmake).

# Replaces `old` by `new` in the CRT source file `source` (a path under crt_dir).
function(s3tc_change_crt_source crt_dir source old new)
    set(path "${crt_dir}/${source}")
    file(READ "${path}" text)
    string(FIND "${text}" "${old}" at)
    if(at EQUAL -1)
        message(FATAL_ERROR "cmake/PatchAwsCrt.cmake: ${source} no longer holds the text it changes; "
            "check the change against this CRT version")
    endif()
    string(REPLACE "${old}" "${new}" text "${text}")
    file(WRITE "${path}" "${text}")
endfunction()

function(s3tc_patch_awscrt crt_dir)
    # 1. aws-c-s3 reads a CreateMultipartUpload answer's UploadId only under S3's root element,
    # InitiateMultipartUploadResult. Some S3-compatible servers (rclone's `serve s3`) name the root
    # InitiateMultipartUpload; boto3 reads the UploadId either way, and so does the changed CRT, for uploads and
    # copies. Unchanged, the CRT fails such uploads with AWS_ERROR_S3_MISSING_UPLOAD_ID (s3exception.py explains it).
    set(lookup
"                const char *xml_path[] = {\"InitiateMultipartUploadResult\", \"UploadId\", NULL};
                aws_xml_get_body_at_path(meta_request->allocator, xml_doc, xml_path, &upload_id);
")
    set(either_root
"${lookup}                if (upload_id.len == 0) { /* s3torchconnector: cmake/PatchAwsCrt.cmake, change 1 */
                    const char *other_root_path[] = {\"InitiateMultipartUpload\", \"UploadId\", NULL};
                    aws_xml_get_body_at_path(meta_request->allocator, xml_doc, other_root_path, &upload_id);
                }
")
    s3tc_change_crt_source("${crt_dir}" aws-c-s3/source/s3_auto_ranged_put.c "${lookup}" "${either_root}")
    s3tc_change_crt_source("${crt_dir}" aws-c-s3/source/s3_copy_object.c "${lookup}" "${either_root}")

    # 2. A GET of an empty object learns that it is empty from S3's 416 and asks again with partNumber=1. When that
    # request fails without a response (its download cancelled: a dataset's read-ahead dropped), the CRT reads the
    # headers it never got: a null dereference on a CRT thread that ends the process. It now fails the request as
    # the HEAD path beside it does. Found by .ci/sanitize (UBSan) in tests/compat.
    set(part_one
"        case AWS_S3_AUTO_RANGE_GET_REQUEST_TYPE_GET_OBJECT_WITH_PART_NUMBER_1:
            AWS_ASSERT(request->part_number == 1);
")
    set(part_one_checked
"${part_one}            if (error_code != AWS_ERROR_SUCCESS) { /* s3torchconnector: cmake/PatchAwsCrt.cmake, change 2 */
                aws_raise_error(error_code);
                break;
            }
")
    s3tc_change_crt_source("${crt_dir}" aws-c-s3/source/s3_auto_ranged_get.c "${part_one}" "${part_one_checked}")
endfunction()

# A CRT built elsewhere lacks these changes: say what that costs, at every configure.
function(s3tc_warn_unchanged_crt what)
    message(WARNING "s3torchconnector: ${what} is used as it is, without cmake/PatchAwsCrt.cmake's changes: "
        "a GET of an empty object cancelled while the CRT asks again (partNumber=1) can crash the process (change 2), "
        "and uploads to servers that answer CreateMultipartUpload as rclone does fail (change 1). Unset "
        "S3TC_CRT_SOURCE_DIR, or pass -DS3TC_USE_INSTALLED_CRT=OFF, to build the pinned CRT with them.")
endfunction()
