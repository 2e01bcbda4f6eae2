# The one change made to the pinned CRT sources, applied when they are unpacked (cmake/AwsCrt.cmake, case 3).
#
# aws-c-s3 reads a CreateMultipartUpload answer's UploadId only under S3's root element,
# InitiateMultipartUploadResult. Some S3-compatible servers (rclone's `serve s3`) name the root
# InitiateMultipartUpload; boto3 reads the UploadId either way, and so does the patched CRT, for uploads and for
# copies. A CRT built elsewhere (an installed aws-c-s3, S3TC_CRT_SOURCE_DIR) is not changed: with such a server
# it fails the upload with AWS_ERROR_S3_MISSING_UPLOAD_ID, which s3exception.py explains.
#
# Each replaced text must be found exactly as written, so a CRT bump that moves it fails the build here instead
# of dropping the change quietly.

set(_s3tc_upload_id_lookup
"                const char *xml_path[] = {\"InitiateMultipartUploadResult\", \"UploadId\", NULL};
                aws_xml_get_body_at_path(meta_request->allocator, xml_doc, xml_path, &upload_id);
")
set(_s3tc_upload_id_lookup_patched
"${_s3tc_upload_id_lookup}                if (upload_id.len == 0) { /* s3torchconnector: cmake/PatchAwsCrt.cmake */
                    const char *other_root_path[] = {\"InitiateMultipartUpload\", \"UploadId\", NULL};
                    aws_xml_get_body_at_path(meta_request->allocator, xml_doc, other_root_path, &upload_id);
                }
")

function(s3tc_patch_awscrt crt_dir)
    foreach(source aws-c-s3/source/s3_auto_ranged_put.c aws-c-s3/source/s3_copy_object.c)
        set(path "${crt_dir}/${source}")
        file(READ "${path}" text)
        string(FIND "${text}" "cmake/PatchAwsCrt.cmake" already)
        if(already GREATER -1)
            continue()
        endif()
        string(FIND "${text}" "${_s3tc_upload_id_lookup}" at)
        if(at EQUAL -1)
            message(FATAL_ERROR "cmake/PatchAwsCrt.cmake: ${source} no longer holds the UploadId lookup it patches; "
                "check the change against this CRT version")
        endif()
        string(REPLACE "${_s3tc_upload_id_lookup}" "${_s3tc_upload_id_lookup_patched}" text "${text}")
        file(WRITE "${path}" "${text}")
    endforeach()
endfunction()
