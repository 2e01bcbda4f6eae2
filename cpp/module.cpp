// Python bindings of the native module. Behaviour lives in the other files; this one only binds.
// The calls that wait (GetObjectStream's reads and info, PutObjectStream's write, close and abort, the
// client's one-shot requests, take_log_records(wait=True)) hold the GIL except while they wait: they release it
// for the wait itself through GilReleased (gil.h), which also keeps a daemon thread still waiting at exit safe.
#include "buffer.h"
#include "client.h"
#include "errors.h"
#include "fork.h"
#include "get.h"
#include "gil.h"
#include "list_result.h"
#include "logging.h"
#include "manifest_lines.h"
#include "object_index.h"
#include "put.h"
#include "python_shuffle.h"
#include "runtime.h"
#include "s3express.h"
#include "wait.h"

#include <aws/checksums/crc.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <set>
#include <string>

namespace py = pybind11;
using namespace s3tc;

namespace {

// The raw counters and histograms, as plain Python values; s3torchconnector/_metrics.py shapes them.
py::dict metrics_as_dict(const MetricsSnapshot &snapshot) {
    py::dict operations;
    for (const auto &[name, counts] : snapshot.operations) {
        py::dict entry;
        entry["requests"] = counts.requests;
        entry["bytes"] = counts.bytes;
        entry["bytes_in_place"] = counts.bytes_in_place;
        entry["retries"] = counts.retries;
        entry["throttles"] = counts.throttles;
        entry["server_errors"] = counts.server_errors;
        entry["stalls_dropped"] = counts.stalls_dropped;
        entry["failed"] = counts.failed;
        entry["first_byte_us"] = py::cast(counts.first_byte_us);
        entry["duration_us"] = py::cast(counts.duration_us);
        operations[py::str(name)] = entry;
    }
    py::dict result;
    result["operations"] = operations;
    result["peak_connections"] = snapshot.peak_connections;
    return result;
}

// A new bytes object whose `size` bytes a download fills before Python sees them.
py::bytes uninitialized_bytes(uint64_t size) {
    auto body = py::reinterpret_steal<py::bytes>(PyBytes_FromStringAndSize(nullptr, static_cast<py::ssize_t>(size)));
    if (!body) throw py::error_already_set();
    return body;
}

// Each field of ClientConfig from the keyword of its name; Python gives them all (see client.h).
ClientConfig client_config_from(const py::kwargs &options) {
    static const std::set<std::string> names = {
#define S3TC_FIELD_NAME(type, name) #name,
        S3TC_CLIENT_CONFIG_FIELDS(S3TC_FIELD_NAME)
#undef S3TC_FIELD_NAME
    };
    for (const auto &option : options) {
        const std::string name = py::str(option.first);
        if (names.count(name) == 0) throw py::type_error("NativeClient() has no option " + name);
    }
    ClientConfig config;
#define S3TC_TAKE_FIELD(type, name)                                                               \
    if (!options.contains(#name)) throw py::type_error("NativeClient() needs the option " #name); \
    config.name = options[#name].cast<type>();
    S3TC_CLIENT_CONFIG_FIELDS(S3TC_TAKE_FIELD)
#undef S3TC_TAKE_FIELD
    return config;
}

uint8_t *bytes_data(const py::bytes &body) { return reinterpret_cast<uint8_t *>(PyBytes_AS_STRING(body.ptr())); }

// A Python buffer held for the duration of one call.
class BufferView {
public:
    BufferView(const py::object &source, bool writable) {
        if (PyObject_GetBuffer(source.ptr(), &view_, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) != 0) {
            throw py::error_already_set();
        }
    }
    ~BufferView() { PyBuffer_Release(&view_); }
    uint8_t *data() { return static_cast<uint8_t *>(view_.buf); }
    size_t size() const { return static_cast<size_t>(view_.len); }

private:
    Py_buffer view_;
};

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "The native S3 engine of s3torchconnector, over the AWS Common Runtime. Internal API.";
    register_s3_exception(m);
    remember_main_thread();
    watch_interpreter_exit();
    install_fork_handlers();
    // The CRT's libraries initialise on a thread of their own while the rest of the package imports; the
    // interpreter's exit waits for that thread, so that the C libraries' exit handlers never run under it.
    start_crt_library_init();
    Py_AtExit(wait_for_crt_library_init);

    m.def(
        "shuffled_positions",
        [](uint32_t n, const std::vector<uint32_t> &mt_state) {
            if (mt_state.empty()) throw py::value_error("mt_state must be Random.getstate()[1]");
            const std::vector<uint32_t> words(mt_state.begin(), mt_state.end() - 1);
            const std::vector<uint32_t> order = python_shuffled_positions(n, words, mt_state.back());
            // An array('I'): 4 bytes a position, where a list holds a Python int (about 36 bytes) for each.
            py::bytes raw(reinterpret_cast<const char *>(order.data()), order.size() * sizeof(uint32_t));
            return py::module_::import("array").attr("array")("I", raw);
        },
        py::arg("n"), py::arg("mt_state"));
    m.def(
        "_parse_list_result",
        [](const py::bytes &document) -> py::object {
            // For the tests: what list_objects reads of a ListBucketResult, without a server.
            ListResult result;
            if (!parse_list_result(std::string_view(document), result)) return py::none();
            py::list objects;
            for (const auto &info : result.objects)
                objects.append(py::make_tuple(info.key, info.etag, info.size, info.last_modified, info.storage_class));
            return py::make_tuple(objects, result.prefixes, result.next_continuation_token, result.truncated);
        },
        py::arg("document"));
    m.def(
        "crc32c",
        [](const py::object &data, uint32_t previous) {
            Py_buffer view;  // PyBUF_SIMPLE: any contiguous bytes-like object, refused otherwise
            if (PyObject_GetBuffer(data.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
            const auto *bytes = static_cast<const uint8_t *>(view.buf);
            const auto length = static_cast<size_t>(view.len);
            init_crt_library();  // aws-checksums picks its hardware implementation there
            uint32_t crc = 0;
            if (length < (1u << 20)) {
                crc = aws_checksums_crc32c_ex(bytes, length, previous);
            } else {
                GilReleased released;  // a cached object of gigabytes takes a while even at 10 GB/s
                crc = aws_checksums_crc32c_ex(bytes, length, previous);
            }
            PyBuffer_Release(&view);
            return crc;
        },
        py::arg("data"), py::arg("previous") = 0);
    m.def(
        "is_directory_bucket", [](const std::string &bucket) { return !directory_bucket_zone(bucket).empty(); },
        py::arg("bucket"));
    m.def("log_targets", &log_targets);
    m.def(
        "set_log_levels",
        [](const std::string &sink, const std::map<std::string, int> &levels) {
            if (sink != "writer" && sink != "python") throw py::value_error("sink must be 'writer' or 'python'");
            set_log_levels(sink == "writer" ? LogSink::writer : LogSink::python, levels);
        },
        py::arg("sink"), py::arg("levels"));
    m.def("set_log_directory", &set_log_directory, py::arg("directory"));
    m.def("log_level", &log_level);
    m.def(
        "take_log_records",
        [](bool wait) {
            uint64_t dropped = 0;
            uint64_t batch = 0;
            std::vector<LogRecord> records = take_log_records(wait, dropped, batch);
            py::list out(records.size());
            size_t i = 0;
            for (const LogRecord &record : records) {
                // CRT messages may quote bytes from the wire: never fail on them.
                auto message = py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(
                    record.message.data(), static_cast<py::ssize_t>(record.message.size()), "replace"));
                if (!message) throw py::error_already_set();
                out[i++] = py::make_tuple(*record.target, record.level, record.time, record.thread, message);
            }
            return py::make_tuple(out, dropped, batch);
        },
        py::arg("wait"));

    // An index file that cannot be opened or written is an OSError with its errno, as Python's own I/O raises.
    py::register_exception_translator([](std::exception_ptr raised) {
        try {
            if (raised) std::rethrow_exception(raised);
        } catch (const IndexFileError &error) {
            const int code = error.code().value();
            py::object instance =
                py::reinterpret_borrow<py::object>(PyExc_OSError)(code, std::strerror(code), error.path());
            PyErr_SetObject(PyExc_OSError, instance.ptr());
        }
    });
    m.attr("OBJECT_INDEX_VERSION") = OBJECT_INDEX_VERSION;
    py::class_<ObjectIndex, std::shared_ptr<ObjectIndex>>(m, "ObjectIndex")
        .def(py::init<std::string>(), py::arg("path"))
        .def("__len__", &ObjectIndex::size)
        .def(
            "entry",
            [](const ObjectIndex &index, uint64_t position) {
                IndexEntry entry = index.entry(position);
                return py::make_tuple(entry.bucket, entry.key, entry.size, entry.etag, entry.storage_class,
                                      entry.last_modified);
            },
            py::arg("position"))
        .def_property_readonly("keys_digest", &ObjectIndex::keys_digest)
        .def_property_readonly("path", &ObjectIndex::path)
        .def_property_readonly("file_size", &ObjectIndex::file_size);
    py::class_<ObjectIndexWriter>(m, "ObjectIndexWriter")
        .def(py::init<std::string, bool>(), py::arg("path"), py::arg("listing") = false)
        .def("add", &ObjectIndexWriter::add, py::arg("bucket"), py::arg("key"), py::arg("size"), py::arg("etag"),
             py::arg("storage_class") = "", py::arg("last_modified") = "")
        .def(
            "add_simple_lines",
            [](ObjectIndexWriter &writer, const py::bytes &text, size_t start, const std::string &bucket) {
                char *data = nullptr;
                py::ssize_t length = 0;
                if (PyBytes_AsStringAndSize(text.ptr(), &data, &length) != 0) throw py::error_already_set();
                const std::string_view view(data, static_cast<size_t>(length));
                if (start > view.size()) throw py::value_error("start is past the end of the text");
                const SimpleLinesRead read = add_simple_lines(view, start, bucket, writer);
                return py::make_tuple(read.end, read.lines);
            },
            py::arg("text"), py::arg("start"), py::arg("bucket"))
        .def_property_readonly("count", &ObjectIndexWriter::count)
        .def("finish", &ObjectIndexWriter::finish)
        .def("abandon", &ObjectIndexWriter::abandon);

    py::class_<Buffer, std::shared_ptr<Buffer>>(m, "Buffer", py::buffer_protocol())
        .def("__len__", &Buffer::size)
        .def_buffer([](Buffer &buffer) {
            return py::buffer_info(buffer.data(), 1, py::format_descriptor<uint8_t>::format(), 1,
                                   {static_cast<py::ssize_t>(buffer.size())}, {1}, false);
        });

    py::class_<ObjectInfo>(m, "ObjectInfo")
        .def_readonly("key", &ObjectInfo::key)
        .def_readonly("etag", &ObjectInfo::etag)
        .def_readonly("size", &ObjectInfo::size)
        .def_readonly("last_modified", &ObjectInfo::last_modified)
        .def_readonly("storage_class", &ObjectInfo::storage_class)
        .def_readonly("restore", &ObjectInfo::restore);

    py::class_<ListPage>(m, "ListPage")
        .def_readonly("objects", &ListPage::objects)
        .def_property_readonly("keys",
                               [](const ListPage &page) {
                                   py::list keys(page.objects.size());
                                   for (size_t i = 0; i < page.objects.size(); ++i)
                                       keys[i] = py::str(page.objects[i].key);
                                   return keys;
                               })
        .def(
            "add_to",
            [](const ListPage &page, ObjectIndexWriter &writer, const std::string &bucket, size_t end) {
                // A listing's page straight into its index: no Python object per key.
                end = std::min(end, page.objects.size());
                for (size_t i = 0; i < end; ++i) {
                    const ObjectInfo &info = page.objects[i];
                    writer.add(bucket, info.key, static_cast<int64_t>(info.size), info.etag, info.storage_class,
                               info.last_modified);
                }
            },
            py::arg("writer"), py::arg("bucket"), py::arg("end"))
        .def_readonly("common_prefixes", &ListPage::common_prefixes)
        .def_readonly("next_continuation_token", &ListPage::next_continuation_token);

    py::class_<ObjectVersion, std::shared_ptr<ObjectVersion>>(m, "ObjectVersion")
        .def(py::init<std::string>(), py::arg("etag") = "")
        .def_property_readonly("etag", &ObjectVersion::etag);

    py::class_<GetStream>(m, "GetObjectStream")
        .def("info", &GetStream::info)
        .def("read_all_bytes",
             [](GetStream &stream) {
                 // The body lands directly in a new bytes object: no copy for a caller that wants bytes.
                 const uint64_t size = stream.remaining();
                 py::bytes body = uninitialized_bytes(size);
                 stream.receive_rest(bytes_data(body), size);
                 return body;
             })
        .def("land_bytes",
             [](GetStream &stream) {
                 // A new bytes object the rest of the body lands in, in the background: its bytes may be read
                 // once wait_landed() said they are in. The stream holds a reference until its lander ended.
                 const uint64_t size = stream.remaining();
                 py::bytes body = uninitialized_bytes(size);
                 std::shared_ptr<void> owner(new py::object(body), [](void *held) {
                     py::gil_scoped_acquire gil;
                     delete static_cast<py::object *>(held);
                 });
                 stream.land(bytes_data(body), size, std::move(owner));
                 return body;
             })
        .def("wait_landed", &GetStream::wait_landed, py::arg("start"), py::arg("end"))
        .def("has_landed", &GetStream::has_landed, py::arg("start"), py::arg("end"))
        .def("next_chunk",
             [](GetStream &stream) {
                 // Python may keep the chunk past the stream and its client: never one in the CRT's buffer.
                 std::shared_ptr<Buffer> chunk = stream.next_chunk();
                 if (!chunk || !chunk->borrowed()) return chunk;
                 auto copy = std::make_shared<Buffer>(chunk->size());
                 std::memcpy(copy->data(), chunk->data(), chunk->size());
                 return copy;
             })
        .def(
            "readinto",
            [](GetStream &stream, const py::object &target) {
                BufferView view(target, true);
                return stream.readinto(view.data(), view.size());
            },
            py::arg("buffer"))
        .def("close", &GetStream::close)
        // The original's stream interface: bucket, key, tell() and iteration over the body as bytes chunks.
        .def_property_readonly("bucket", &GetStream::bucket)
        .def_property_readonly("key", &GetStream::key)
        .def("tell", &GetStream::tell)
        .def(
            "__iter__", [](GetStream &stream) -> GetStream & { return stream; }, py::return_value_policy::reference)
        .def("__next__", [](GetStream &stream) {
            std::shared_ptr<Buffer> chunk = stream.next_chunk();
            if (!chunk) throw py::stop_iteration();
            return py::bytes(reinterpret_cast<const char *>(chunk->data()), chunk->size());
        });

    py::class_<PutStream>(m, "PutObjectStream")
        .def(
            "write",
            [](PutStream &stream, const py::object &data) {
                BufferView view(data, false);
                stream.write(view.data(), view.size());
                return view.size();
            },
            py::arg("data"))
        .def("close", &PutStream::close)
        .def("abort", &PutStream::abort)
        .def_property_readonly("bytes_written", &PutStream::bytes_written)
        .def_property_readonly("bucket", &PutStream::bucket)
        .def_property_readonly("key", &PutStream::key);

    py::class_<Client, std::shared_ptr<Client>>(m, "NativeClient")
        .def(py::init([](const py::kwargs &options) { return std::make_shared<Client>(client_config_from(options)); }))
        .def(
            "get_object",
            [](std::shared_ptr<Client> client, const std::string &bucket, const std::string &key,
               std::optional<uint64_t> start, std::optional<uint64_t> end, bool whole,
               std::shared_ptr<ObjectVersion> version) {
                return std::make_unique<GetStream>(std::move(client), bucket, key, start, end, whole,
                                                   std::move(version));
            },
            py::arg("bucket"), py::arg("key"), py::arg("start") = py::none(), py::arg("end") = py::none(),
            py::arg("whole") = false, py::arg("version") = py::none())
        .def(
            "put_object",
            [](std::shared_ptr<Client> client, const std::string &bucket, const std::string &key,
               const std::string &storage_class) {
                return std::make_unique<PutStream>(std::move(client), bucket, key, storage_class);
            },
            py::arg("bucket"), py::arg("key"), py::arg("storage_class") = "")
        .def("head_object", &Client::head_object, py::arg("bucket"), py::arg("key"))
        .def("delete_object", &Client::delete_object, py::arg("bucket"), py::arg("key"))
        .def("copy_object", &Client::copy_object, py::arg("src_bucket"), py::arg("src_key"), py::arg("dst_bucket"),
             py::arg("dst_key"))
        .def("list_objects", &Client::list_objects, py::arg("bucket"), py::arg("prefix") = "",
             py::arg("delimiter") = "", py::arg("max_keys") = 1000, py::arg("continuation_token") = "",
             py::arg("start_after") = "")
        .def("metrics", [](const Client &client) { return metrics_as_dict(client.metrics()->snapshot()); });
}
