#include "localhost_names.h"

#include <aws/common/array_list.h>
#include <aws/common/string.h>
#include <aws/io/host_resolver.h>

#include <cctype>
#include <cstring>

namespace s3tc {
namespace {

// The default resolver's own operations, of which only resolve_host is replaced. The resolver keeps a pointer to
// its table (a documented way to customise it), so these live as long as the process.
aws_host_resolver_vtable localhost_aware_vtable;
decltype(aws_host_resolver_vtable::resolve_host) resolve_default = nullptr;

bool is_under_localhost(const aws_string *host) {
    static const char suffix[] = ".localhost";
    const size_t suffix_length = sizeof(suffix) - 1;
    size_t length = host->len;
    if (length > 0 && host->bytes[length - 1] == '.') --length;  // a fully qualified "bucket.localhost."
    if (length <= suffix_length) return false;
    const uint8_t *tail = host->bytes + length - suffix_length;
    for (size_t i = 0; i < suffix_length; ++i) {
        if (std::tolower(tail[i]) != suffix[i]) return false;
    }
    return true;
}

// An aws_resolve_host_implementation_fn: the system's addresses of "localhost", under the name asked for.
int resolve_as_localhost(aws_allocator *allocator, const aws_string *host_name, aws_array_list *output_addresses,
                         void *user_data) {
    aws_string *localhost = aws_string_new_from_c_str(allocator, "localhost");
    if (localhost == nullptr) return AWS_OP_ERR;
    const size_t before = aws_array_list_length(output_addresses);
    const int result = aws_default_dns_resolve(allocator, localhost, output_addresses, user_data);
    aws_string_destroy(localhost);
    for (size_t i = before; i < aws_array_list_length(output_addresses); ++i) {
        aws_host_address *address = nullptr;
        aws_array_list_get_at_ptr(output_addresses, reinterpret_cast<void **>(&address), i);
        aws_string_destroy(const_cast<aws_string *>(address->host));
        address->host = aws_string_new_from_string(allocator, host_name);
    }
    return result;
}

int resolve_host(aws_host_resolver *resolver, const aws_string *host_name, aws_on_host_resolved_result_fn *on_resolved,
                 const aws_host_resolution_config *config, void *user_data) {
    if (!is_under_localhost(host_name)) return resolve_default(resolver, host_name, on_resolved, config, user_data);
    // The resolver keeps the config of a name's first request for as long as it caches the name.
    aws_host_resolution_config localhost_config =
        config != nullptr ? *config : aws_host_resolver_init_default_resolution_config();
    localhost_config.impl = resolve_as_localhost;
    localhost_config.impl_data = nullptr;
    return resolve_default(resolver, host_name, on_resolved, &localhost_config, user_data);
}

}  // namespace

void resolve_localhost_names(aws_host_resolver *resolver) {
    if (resolver == nullptr) return;
    if (resolve_default == nullptr) {  // every runtime's resolver (one per process) shares the default table
        localhost_aware_vtable = *resolver->vtable;
        resolve_default = localhost_aware_vtable.resolve_host;
        localhost_aware_vtable.resolve_host = resolve_host;
    }
    resolver->vtable = &localhost_aware_vtable;
}

}  // namespace s3tc
