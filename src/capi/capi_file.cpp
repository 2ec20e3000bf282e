// Saving and loading at the C boundary: the atomic write (temporary file, fsync,
// rename), bounded reads, and metadata strings. The bytes themselves are core's
// (core/model_file.cpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "capi/guard.h"
#include "capi/handles.h"
#include "core/model_file.h"

using nn::fail;
using nn::capi::guard;
using nn::capi::require;

namespace {

std::string os_error(const std::string &what, const std::string &path) {
    return what + " " + path + ": " + std::strerror(errno);
}

nn::file::SaveConfig save_config(const nn::Model &m, const nn_save_options *options) {
    nn::file::SaveConfig c;
    c.storage = m.shape().dtype;
    c.training_state = true;
    if (options) {
        nn::capi::check_struct_size(options->struct_size, sizeof(nn_save_options), "nn_save_options");
        if (options->storage != NN_DTYPE_FLOAT16 && options->storage != NN_DTYPE_FLOAT32 &&
            options->storage != NN_DTYPE_FLOAT64 && options->storage != NN_DTYPE_MODEL)
            fail(NN_ERR_INVALID_ARGUMENT, "storage is not a float dtype (" + std::to_string(int(options->storage)) + ")");
        if (options->storage != NN_DTYPE_MODEL) c.storage = options->storage;
        c.training_state = options->include_training_state != 0;
    }
    return c;
}

// Writes all bytes to fd, across partial writes and interruptions.
bool write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        const ssize_t k = ::write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += k;
        n -= size_t(k);
    }
    return true;
}

// Temporary file in the target's directory, written, flushed and renamed over `path`.
void write_atomically(const std::string &path, const std::vector<unsigned char> &bytes) {
    struct stat st {};
    mode_t mode = 0644;
    if (::stat(path.c_str(), &st) == 0) {
        if (!S_ISREG(st.st_mode)) fail(NN_ERR_INVALID_ARGUMENT, path + " exists and is not a regular file");
        mode = st.st_mode & 07777;
    } else if (errno != ENOENT) {
        fail(NN_ERR_IO, os_error("cannot inspect", path));
    }
    // Everything that allocates happens before the rename: once the new file is in
    // place, nothing may fail and report a save that happened as failed.
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    std::string tmp = path + ".tmp-XXXXXX";
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0) fail(NN_ERR_IO, os_error("cannot create a temporary file beside", path));
    const bool ok = write_all(fd, bytes.data(), bytes.size()) && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
    const int saved = errno;
    if (::close(fd) != 0 || !ok) {
        const int err = ok ? errno : saved;
        ::unlink(tmp.c_str());  // first: building the message may itself fail
        errno = err;
        fail(NN_ERR_IO, os_error("cannot write", tmp));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        errno = err;
        fail(NN_ERR_IO, os_error("cannot rename the temporary file onto", path));
    }
    // Make the rename itself durable; a failure here leaves a correct file in place.
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

std::vector<unsigned char> read_file(const std::string &path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(NN_ERR_IO, os_error("cannot open", path));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail(NN_ERR_IO, os_error("cannot inspect", path));
    if (!S_ISREG(st.st_mode)) fail(NN_ERR_INVALID_ARGUMENT, path + " is not a regular file");
    if (double(st.st_size) > nn::capi::physical_memory_bytes())
        fail(NN_ERR_OUT_OF_MEMORY, path + " is larger than this machine's memory");
    std::vector<unsigned char> bytes(size_t(st.st_size));
    size_t got = 0;
    while (got < bytes.size()) {
        const ssize_t k = ::read(fd, bytes.data() + got, bytes.size() - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) fail(NN_ERR_IO, os_error("cannot read", path));
        if (k == 0) break;  // shrank while reading: parse what is there, it will not check out
        got += size_t(k);
    }
    bytes.resize(got);
    return bytes;
}

nn_model *build(const nn::file::Contents &c) {
    const nn::Placement place = nn::capi::placement_of(nn::runtime::resolve(NN_DEVICE_AUTO, 0));
    auto handle = std::make_unique<nn_model>();
    handle->impl = std::make_unique<nn::Model>(c.shape, c.params, c.rng, place);
    if (c.has_training_state) {
        handle->impl->restore_training_state(c.epochs_done, c.rng, c.records, c.epochs);
        // The optimizer goes on where it stopped; without OPTM it starts from zero.
        if (c.has_optimizer && c.optimizer.kind != NN_OPTIMIZER_SGD) {
            // A plugin that predates optimizers cannot hold the state: the model starts on
            // the reference device instead, which always can, rather than lose it.
            if (!handle->impl->backend_trains_optimizers())
                handle->impl->move_to(nn::capi::placement_of(nn::runtime::resolve(NN_DEVICE_REFERENCE, 0)));
            handle->impl->set_optimizer_state(c.optimizer);
        }
    }
    handle->impl->metadata() = c.metadata;
    return handle.release();
}

std::string checked_path(const char *path) {
    require(path, "path");
    if (path[0] == '\0') fail(NN_ERR_INVALID_ARGUMENT, "path is empty");
    return path;
}

}  // namespace

extern "C" {

NN_API void nn_save_options_init(nn_save_options *options) {
    if (!options) return;
    std::memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    options->storage = NN_DTYPE_MODEL;
    options->include_training_state = 1;
}

NN_API nn_status nn_save(nn_model *model, const char *path, const nn_save_options *options) {
    return guard("nn_save", [&] {
        require(model, "model");
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        const std::string p = checked_path(path);
        write_atomically(p, nn::file::serialize(*model->impl, save_config(*model->impl, options)));
    });
}

NN_API nn_status nn_save_to_buffer(nn_model *model, void *out, size_t capacity, size_t *out_size,
                                   const nn_save_options *options) {
    return guard("nn_save_to_buffer", [&] {
        require(model, "model");
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        require(out_size, "out_size");
        const std::vector<unsigned char> bytes = nn::file::serialize(*model->impl, save_config(*model->impl, options));
        *out_size = bytes.size();
        if (!out) return;
        if (capacity < bytes.size())
            fail(NN_ERR_BUFFER_TOO_SMALL, "the model needs " + std::to_string(bytes.size()) + " bytes, capacity is " +
                                              std::to_string(capacity));
        std::memcpy(out, bytes.data(), bytes.size());
    });
}

NN_API nn_status nn_load(nn_model **out, const char *path) {
    if (out) *out = nullptr;
    return guard("nn_load", [&] {
        require(out, "out");
        const std::string p = checked_path(path);
        const std::vector<unsigned char> bytes = read_file(p);
        try {
            *out = build(nn::file::parse(bytes.data(), bytes.size()));
        } catch (const nn::Error &e) {
            throw nn::Error(e.status(), p + ": " + e.what());
        }
    });
}

NN_API nn_status nn_load_from_buffer(nn_model **out, const void *data, size_t size) {
    if (out) *out = nullptr;
    return guard("nn_load_from_buffer", [&] {
        require(out, "out");
        require(data, "data");
        nn::capi::check_count(size, 1, "size");
        *out = build(nn::file::parse(static_cast<const unsigned char *>(data), size));
    });
}

NN_API nn_status nn_set_metadata(nn_model *model, const char *key, const char *value) {
    return guard("nn_set_metadata", [&] {
        require(model, "model");
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        require(key, "key");
        const size_t kl = std::strlen(key);
        if (kl == 0 || kl > nn::file::kMaxKey)
            fail(NN_ERR_INVALID_ARGUMENT, "a metadata key has 1 to " + std::to_string(nn::file::kMaxKey) + " bytes, not " + std::to_string(kl));
        auto &meta = model->impl->metadata();
        if (!value) {
            meta.erase(key);
            return;
        }
        const size_t vl = std::strlen(value);
        if (vl > nn::file::kMaxValue)
            fail(NN_ERR_INVALID_ARGUMENT, "a metadata value has at most " + std::to_string(nn::file::kMaxValue) + " bytes, not " + std::to_string(vl));
        if (meta.size() >= 4096 && !meta.count(key)) fail(NN_ERR_INVALID_ARGUMENT, "a model keeps at most 4096 metadata keys");
        // Both strings first: a failed allocation must not leave a new key behind.
        std::string k(key), v(value);
        meta.insert_or_assign(std::move(k), std::move(v));
    });
}

NN_API nn_status nn_get_metadata(const nn_model *model, const char *key, char *out, size_t capacity, size_t *out_length) {
    return guard("nn_get_metadata", [&] {
        require(model, "model");
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        require(key, "key");
        require(out_length, "out_length");
        const auto &meta = model->impl->metadata();
        const auto it = meta.find(key);
        if (it == meta.end()) fail(NN_ERR_INVALID_ARGUMENT, std::string("no metadata key \"") + key + "\"");
        *out_length = it->second.size();
        if (!out) return;
        if (capacity < it->second.size() + 1)
            fail(NN_ERR_BUFFER_TOO_SMALL, "the value needs " + std::to_string(it->second.size() + 1) + " bytes with its NUL, capacity is " +
                                              std::to_string(capacity));
        std::memcpy(out, it->second.c_str(), it->second.size() + 1);
    });
}

}  // extern "C"
