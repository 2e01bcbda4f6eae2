// A small XML tree for S3's responses (errors, ListObjectsV2), built with the CRT's parser.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace s3tc {

struct XmlElement {
    std::string name;
    std::string text;  // unescaped body, for leaf elements
    std::vector<XmlElement> children;

    // The text of the first child named `child`, or "" when there is none.
    std::string child_text(const std::string &child) const;
};

// Parses `document`. Elements named in `containers` are read as parents of other elements,
// all others as leaves holding text. Returns false when the document is not well-formed XML.
bool parse_xml(const std::string &document, const std::set<std::string> &containers, XmlElement &root);

}  // namespace s3tc
