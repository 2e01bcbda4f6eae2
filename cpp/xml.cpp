#include "xml.h"

#include "text.h"

#include <aws/common/byte_buf.h>
#include <aws/common/xml_parser.h>

namespace s3tc {
namespace {

struct ParseContext {
    const std::set<std::string> *containers;
    XmlElement *parent;
};

int read_node(aws_xml_node *node, void *user_data) {
    auto *context = static_cast<ParseContext *>(user_data);
    XmlElement element;
    element.name = to_string(aws_xml_node_get_name(node));
    if (context->containers->count(element.name) != 0) {
        ParseContext child_context{context->containers, &element};
        if (aws_xml_node_traverse(node, read_node, &child_context) != AWS_OP_SUCCESS) {
            return AWS_OP_ERR;
        }
    } else {
        aws_byte_buf body;
        aws_byte_buf_init(&body, aws_default_allocator(), 64);
        int result = aws_xml_node_as_body_unescaped(aws_default_allocator(), node, &body);
        element.text = std::string(reinterpret_cast<const char *>(body.buffer), body.len);
        aws_byte_buf_clean_up(&body);
        if (result != AWS_OP_SUCCESS) {
            return AWS_OP_ERR;
        }
    }
    context->parent->children.push_back(std::move(element));
    return AWS_OP_SUCCESS;
}

}  // namespace

std::string XmlElement::child_text(const std::string &child) const {
    for (const auto &element : children) {
        if (element.name == child) {
            return element.text;
        }
    }
    return "";
}

bool parse_xml(const std::string &document, const std::set<std::string> &containers, XmlElement &root) {
    XmlElement holder;
    ParseContext context{&containers, &holder};
    aws_xml_parser_options options = {};
    options.doc = aws_byte_cursor_from_array(document.data(), document.size());
    options.max_depth = 16;
    options.on_root_encountered = read_node;
    options.user_data = &context;
    if (aws_xml_parse(aws_default_allocator(), &options) != AWS_OP_SUCCESS || holder.children.empty()) {
        return false;
    }
    root = std::move(holder.children.front());
    return true;
}

}  // namespace s3tc
