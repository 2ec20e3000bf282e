// Layout (all integers little-endian; docs/model-format.md is the specification):
//   magic "\x89NNMODEL\r\n\x1a\n" (12 bytes) · u32 format version · u32 flags (0)
//   sections: u32 tag · u32 reserved (0) · u64 payload length · payload
//     "ARCH" architecture, "PARM" parameters, "TRNG" training state (optional),
//     "OPTM" optimizer state and "EPCH" per-epoch validation figures (optional, read
//     only beside TRNG), "META" metadata (optional); unknown tags are skipped, so later
//     versions can add (OPTM and EPCH were added that way: version-1 readers before
//     them skip them).
//   "END " with an 4-byte payload: CRC-32 of every byte before this section's header.
#include "core/model_file.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/float16.h"

namespace nn::file {
namespace {

constexpr unsigned char kMagic[12] = {0x89, 'N', 'N', 'M', 'O', 'D', 'E', 'L', '\r', '\n', 0x1a, '\n'};
constexpr size_t kHeaderSize = sizeof kMagic + 8;
constexpr size_t kSectionHeader = 16;

constexpr uint32_t tag(const char (&s)[5]) {
    return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
           uint32_t(uint8_t(s[3])) << 24;
}
constexpr uint32_t kArch = tag("ARCH"), kParams = tag("PARM"), kTraining = tag("TRNG"), kOptimizer = tag("OPTM"),
                   kEpochs = tag("EPCH"), kMeta = tag("META"), kEnd = tag("END ");

uint32_t storage_code(nn_dtype t) { return t == NN_DTYPE_FLOAT16 ? 2u : t == NN_DTYPE_FLOAT64 ? 1u : 0u; }

class Writer {
public:
    std::vector<unsigned char> bytes;
    void u8(uint8_t v) { bytes.push_back(v); }
    void u16(uint16_t v) { for (int i = 0; i < 2; ++i) u8(uint8_t(v >> (8 * i))); }
    void u32(uint32_t v) { for (int i = 0; i < 4; ++i) u8(uint8_t(v >> (8 * i))); }
    void u64(uint64_t v) { for (int i = 0; i < 8; ++i) u8(uint8_t(v >> (8 * i))); }
    void f32(float v) { uint32_t b; std::memcpy(&b, &v, 4); u32(b); }
    void f64(double v) { uint64_t b; std::memcpy(&b, &v, 8); u64(b); }
    void raw(const void *p, size_t n) { bytes.insert(bytes.end(), static_cast<const unsigned char *>(p), static_cast<const unsigned char *>(p) + n); }
    // Starts a section; returns where its length goes.
    size_t begin(uint32_t t) {
        u32(t);
        u32(0);
        const size_t at = bytes.size();
        u64(0);
        return at;
    }
    void end(size_t at) {
        const uint64_t n = bytes.size() - at - 8;
        for (int i = 0; i < 8; ++i) bytes[at + size_t(i)] = uint8_t(n >> (8 * i));
    }
};

// Reads within [p, p + n); any read past the end is a corrupt file.
class Reader {
public:
    Reader(const unsigned char *p, size_t n, const char *what) : p_(p), n_(n), what_(what) {}
    size_t left() const { return n_ - at_; }
    void need(size_t k) const {
        if (k > left()) fail(NN_ERR_CORRUPT, std::string(what_) + " is truncated");
    }
    uint8_t u8() { need(1); return p_[at_++]; }
    uint16_t u16() { uint16_t v = 0; for (int i = 0; i < 2; ++i) v |= uint16_t(u8()) << (8 * i); return v; }
    uint32_t u32() { uint32_t v = 0; for (int i = 0; i < 4; ++i) v |= uint32_t(u8()) << (8 * i); return v; }
    uint64_t u64() { uint64_t v = 0; for (int i = 0; i < 8; ++i) v |= uint64_t(u8()) << (8 * i); return v; }
    float f32() { uint32_t b = u32(); float v; std::memcpy(&v, &b, 4); return v; }
    double f64() { uint64_t b = u64(); double v; std::memcpy(&v, &b, 8); return v; }
    std::string str(size_t n) { need(n); std::string s(reinterpret_cast<const char *>(p_ + at_), n); at_ += n; return s; }
    void skip(size_t n) { need(n); at_ += n; }
    // A count of items of `item` bytes each that must all still be in the payload.
    size_t count(uint64_t n, size_t item, const char *what) {
        if (item == 0 || n > left() / item) fail(NN_ERR_CORRUPT, std::string(what_) + ": " + what + " count " + std::to_string(n) + " exceeds the section");
        return size_t(n);
    }
    void done() const {
        if (left() != 0) fail(NN_ERR_CORRUPT, std::string(what_) + " has " + std::to_string(left()) + " unexpected trailing bytes");
    }

private:
    const unsigned char *p_;
    size_t n_, at_ = 0;
    const char *what_;
};

void write_arch(Writer &w, const NetShape &s) {
    const size_t at = w.begin(kArch);
    w.u32(uint32_t(s.sizes.size()));
    w.u32(uint32_t(s.activation));
    w.u32(uint32_t(s.loss));
    w.u32(uint32_t(s.dtype));
    for (size_t v : s.sizes) w.u64(v);
    w.end(at);
}

NetShape read_arch(Reader r) {
    NetShape s;
    const uint32_t n = r.u32(), act = r.u32(), loss = r.u32(), dtype = r.u32();
    if (n < 2 || n > 1024) fail(NN_ERR_CORRUPT, "the architecture has " + std::to_string(n) + " layer sizes (2 to 1024 allowed)");
    if (act > NN_ACTIVATION_IDENTITY) fail(NN_ERR_CORRUPT, "unknown activation " + std::to_string(act));
    if (loss > NN_LOSS_MEAN_SQUARED_ERROR) fail(NN_ERR_CORRUPT, "unknown loss " + std::to_string(loss));
    if (dtype > NN_DTYPE_FLOAT64) fail(NN_ERR_CORRUPT, "unknown compute dtype " + std::to_string(dtype));
    r.count(n, 8, "layer size");
    uint64_t total = 0;
    for (uint32_t l = 0; l < n; ++l) {
        const uint64_t v = r.u64();
        if (v == 0 || v > (uint64_t(1) << 40)) fail(NN_ERR_CORRUPT, "layer size " + std::to_string(v) + " is impossible");
        s.sizes.push_back(size_t(v));
    }
    for (uint32_t l = 0; l + 1 < n; ++l) {
        uint64_t w;
        if (__builtin_mul_overflow(uint64_t(s.sizes[l]), uint64_t(s.sizes[l + 1]), &w) ||
            __builtin_add_overflow(w, uint64_t(s.sizes[l + 1]), &w) || __builtin_add_overflow(total, w, &total) ||
            total > (uint64_t(1) << 48))
            fail(NN_ERR_CORRUPT, "the architecture's parameter count is impossible");
    }
    if (loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY && s.sizes.back() < 2) fail(NN_ERR_CORRUPT, "a softmax model with one output");
    s.activation = nn_activation(act);
    s.loss = nn_loss(loss);
    s.dtype = nn_dtype(dtype);
    r.done();
    return s;
}

std::vector<double> read_params(Reader r, const NetShape &shape) {
    const uint32_t storage = r.u32();
    r.u32();  // reserved
    const uint64_t n = r.u64();
    if (storage > 2) fail(NN_ERR_CORRUPT, "unknown storage dtype " + std::to_string(storage));
    if (n != shape.param_count())
        fail(NN_ERR_CORRUPT, "the file has " + std::to_string(n) + " parameters, its architecture " + std::to_string(shape.param_count()));
    const size_t item = storage == 2 ? 2 : storage == 1 ? 8 : 4;
    std::vector<double> p(r.count(n, item, "parameter"));
    for (double &v : p) {
        v = storage == 2 ? f16_to_double(r.u16()) : storage == 1 ? r.f64() : double(r.f32());
        if (!std::isfinite(v)) fail(NN_ERR_CORRUPT, "a parameter is not finite");
        if (shape.dtype == NN_DTYPE_FLOAT32) v = double(float(v));  // the model's own dtype
        if (!std::isfinite(v)) fail(NN_ERR_CORRUPT, "a parameter overflows the model's float32");
    }
    r.done();
    return p;
}

void read_training(Reader r, Contents &c) {
    c.epochs_done = r.u64();
    LegacyRng::State st;
    st.pos = int(r.u32());
    const uint32_t has_gauss = r.u32();
    st.gauss = r.f64();
    st.has_gauss = has_gauss != 0;
    if (has_gauss > 1) fail(NN_ERR_CORRUPT, "the stream's gauss flag is " + std::to_string(has_gauss));
    for (uint32_t &k : st.key) k = r.u32();
    if (!c.rng.set_state(st)) fail(NN_ERR_CORRUPT, "the saved random stream is not a valid state");
    c.records.resize(r.count(r.u64(), 32, "loss record"));
    for (LossRecord &rec : c.records) {
        rec.epoch = r.u64();
        rec.iteration = r.u64();
        rec.steps_per_epoch = r.u64();
        rec.loss = r.f64();
    }
    // The epoch losses; their epoch numbers and validation figures come from EPCH when
    // the file has one (files written before it: epochs 1, 2, … without validation).
    c.epochs.resize(r.count(r.u64(), 8, "epoch loss"));
    for (size_t i = 0; i < c.epochs.size(); ++i) c.epochs[i] = {uint64_t(i) + 1, r.f64(), NAN, NAN};
    r.done();
    // One loss per completed epoch: never more than the epochs trained.
    if (c.epochs.size() > c.epochs_done)
        fail(NN_ERR_CORRUPT, "the file has " + std::to_string(c.epochs.size()) + " epoch losses for " +
                                 std::to_string(c.epochs_done) + " epochs trained");
    c.has_training_state = true;
}

// OPTM: the optimizer's kind, Adam's step count and its state, slots × parameters values
// in the parameters' flat layout. Stored as float32 or float64; a float32 model rounds
// float64 values once, as PARM.
OptimizerState read_optimizer(Reader r, const NetShape &shape) {
    OptimizerState o;
    const uint32_t kind = r.u32(), storage = r.u32();
    const uint64_t step = r.u64(), n = r.u64();
    if (kind > NN_OPTIMIZER_ADAM) fail(NN_ERR_CORRUPT, "unknown optimizer " + std::to_string(kind));
    if (storage > 1) fail(NN_ERR_CORRUPT, "unknown optimizer state storage " + std::to_string(storage));
    o.kind = nn_optimizer(kind);
    if (o.kind != NN_OPTIMIZER_ADAM && step != 0)
        fail(NN_ERR_CORRUPT, "a step count of " + std::to_string(step) + " for an optimizer other than Adam");
    o.adam_step = step;
    const size_t slots = optimizer_slots(o.kind), params = shape.param_count();
    // params ≤ 2^48 (read_arch) and slots ≤ 2: no overflow.
    if (n != uint64_t(slots) * uint64_t(params))
        fail(NN_ERR_CORRUPT, "the optimizer state has " + std::to_string(n) + " values, its optimizer and architecture " +
                                 std::to_string(slots) + " x " + std::to_string(params));
    o.values.resize(r.count(n, storage == 1 ? 8 : 4, "optimizer state value"));
    // Slots holding running squares (AdaGrad and RMSprop h; Adam's second slot, v) are
    // never negative.
    const bool squares_first = o.kind == NN_OPTIMIZER_ADAGRAD || o.kind == NN_OPTIMIZER_RMSPROP;
    const size_t squares_from = squares_first ? 0 : o.kind == NN_OPTIMIZER_ADAM ? params : o.values.size();
    for (size_t i = 0; i < o.values.size(); ++i) {
        double v = storage == 1 ? r.f64() : double(r.f32());
        if (shape.dtype == NN_DTYPE_FLOAT32) v = double(float(v));
        if (!std::isfinite(v)) fail(NN_ERR_CORRUPT, "an optimizer state value is not finite (in the model's dtype)");
        if (i >= squares_from && v < 0.0) fail(NN_ERR_CORRUPT, "a running square of the optimizer state is negative");
        o.values[i] = v;
    }
    r.done();
    return o;
}

// EPCH: per epoch of TRNG's epoch losses, its epoch number and validation figures.
std::vector<EpochRecord> read_epochs(Reader r) {
    std::vector<EpochRecord> e(r.count(r.u64(), 24, "epoch record"));
    for (EpochRecord &rec : e) {
        rec.epoch = r.u64();
        rec.loss = NAN;  // TRNG's
        rec.val_loss = r.f64();
        rec.val_accuracy = r.f64();
        if (!std::isnan(rec.val_accuracy) && !(rec.val_accuracy >= 0.0 && rec.val_accuracy <= 1.0))
            fail(NN_ERR_CORRUPT, "a validation accuracy of " + num(rec.val_accuracy));
    }
    r.done();
    return e;
}

// Puts EPCH's figures beside TRNG's losses: one record per epoch loss, epoch numbers
// increasing from 1 and at most the epochs trained.
void merge_epochs(Contents &c, const std::vector<EpochRecord> &e) {
    if (e.size() != c.epochs.size())
        fail(NN_ERR_CORRUPT, "the file has " + std::to_string(e.size()) + " epoch records and " +
                                 std::to_string(c.epochs.size()) + " epoch losses");
    uint64_t last = 0;
    for (size_t i = 0; i < e.size(); ++i) {
        if (e[i].epoch <= last || e[i].epoch > c.epochs_done)
            fail(NN_ERR_CORRUPT, "epoch record " + std::to_string(i) + " has epoch " + std::to_string(e[i].epoch) +
                                     " (after " + std::to_string(last) + ", of " + std::to_string(c.epochs_done) + ")");
        last = e[i].epoch;
        c.epochs[i].epoch = e[i].epoch;
        c.epochs[i].val_loss = e[i].val_loss;
        c.epochs[i].val_accuracy = e[i].val_accuracy;
    }
}

void read_meta(Reader r, Contents &c) {
    const size_t n = r.count(r.u32(), 8, "metadata pair");
    for (size_t i = 0; i < n; ++i) {
        const uint32_t kl = r.u32();
        if (kl == 0 || kl > kMaxKey) fail(NN_ERR_CORRUPT, "a metadata key of " + std::to_string(kl) + " bytes");
        std::string key = r.str(kl);
        const uint32_t vl = r.u32();
        if (vl > kMaxValue) fail(NN_ERR_CORRUPT, "a metadata value of " + std::to_string(vl) + " bytes");
        std::string value = r.str(vl);
        if (key.find('\0') != std::string::npos || value.find('\0') != std::string::npos)
            fail(NN_ERR_CORRUPT, "a metadata string contains NUL");
        if (!c.metadata.emplace(std::move(key), std::move(value)).second) fail(NN_ERR_CORRUPT, "a metadata key appears twice");
    }
    r.done();
}

}  // namespace

uint32_t crc32(const unsigned char *data, size_t size, uint32_t crc) {
    static const auto table = [] {
        std::vector<uint32_t> t(256);
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

std::vector<unsigned char> serialize(const Model &model, const SaveConfig &config) {
    const NetShape &shape = model.shape();
    const std::vector<double> &params = model.params();
    Writer w;
    w.raw(kMagic, sizeof kMagic);
    w.u32(kFormatVersion);
    w.u32(0);
    write_arch(w, shape);

    size_t at = w.begin(kParams);
    w.u32(storage_code(config.storage));
    w.u32(0);
    w.u64(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
        const double v = params[i];
        if (!std::isfinite(v)) fail(NN_ERR_NON_FINITE, "parameter " + std::to_string(i) + " is not finite");
        if (config.storage == NN_DTYPE_FLOAT16) {
            const uint16_t h = f16_from_double(v);
            if ((h & 0x7c00u) == 0x7c00u)
                fail(NN_ERR_NON_FINITE, "parameter " + std::to_string(i) + " = " + num(v) + " overflows float16 (max 65504)");
            w.u16(h);
        } else if (config.storage == NN_DTYPE_FLOAT32) {
            if (!std::isfinite(float(v)))
                fail(NN_ERR_NON_FINITE, "parameter " + std::to_string(i) + " = " + num(v) + " overflows float32");
            w.f32(float(v));
        } else {
            w.f64(v);
        }
    }
    w.end(at);

    if (config.training_state) {
        at = w.begin(kTraining);
        w.u64(model.epochs_done());
        const LegacyRng::State st = model.rng().state();
        w.u32(uint32_t(st.pos));
        w.u32(st.has_gauss ? 1u : 0u);
        w.f64(st.gauss);
        for (uint32_t k : st.key) w.u32(k);
        w.u64(model.loss_history().size());
        for (const LossRecord &r : model.loss_history()) {
            w.u64(r.epoch);
            w.u64(r.iteration);
            w.u64(r.steps_per_epoch);
            w.f64(r.loss);
        }
        const std::vector<EpochRecord> &epochs = model.epoch_history();
        w.u64(epochs.size());
        for (const EpochRecord &e : epochs) w.f64(e.loss);
        w.end(at);

        // The validation figures, beside TRNG's epoch losses (which old readers still read).
        if (!epochs.empty()) {
            at = w.begin(kEpochs);
            w.u64(epochs.size());
            for (const EpochRecord &e : epochs) {
                w.u64(e.epoch);
                w.f64(e.val_loss);
                w.f64(e.val_accuracy);
            }
            w.end(at);
        }

        // The optimizer, when it holds state: plain SGD has none, and a model without an
        // OPTM section loads as one whose optimizer starts from zero.
        if (model.optimizer_kind() != NN_OPTIMIZER_SGD) {
            const OptimizerState o = model.optimizer_state();
            const size_t n = optimizer_slots(o.kind) * params.size();
            if (!o.values.empty() && o.values.size() != n)
                fail(NN_ERR_INTERNAL, "the optimizer state has " + std::to_string(o.values.size()) + " values, not " +
                                          std::to_string(n));
            if (!o.values.empty()) {  // empty: no state yet, as good as zeros
                at = w.begin(kOptimizer);
                w.u32(uint32_t(o.kind));
                w.u32(storage_code(shape.dtype));  // the model's own dtype: lossless
                w.u64(o.kind == NN_OPTIMIZER_ADAM ? o.adam_step : 0);
                w.u64(n);
                for (size_t i = 0; i < n; ++i) {
                    const double v = o.values[i];
                    if (!std::isfinite(v))
                        fail(NN_ERR_NON_FINITE, "optimizer state value " + std::to_string(i) + " is not finite (" + num(v) +
                                                    "); save without the training state or reset the optimizer");
                    if (shape.dtype == NN_DTYPE_FLOAT32)
                        w.f32(float(v));
                    else
                        w.f64(v);
                }
                w.end(at);
            }
        }
    }

    if (!model.metadata().empty()) {
        at = w.begin(kMeta);
        w.u32(uint32_t(model.metadata().size()));
        for (const auto &[k, v] : model.metadata()) {
            w.u32(uint32_t(k.size()));
            w.raw(k.data(), k.size());
            w.u32(uint32_t(v.size()));
            w.raw(v.data(), v.size());
        }
        w.end(at);
    }

    const uint32_t crc = crc32(w.bytes.data(), w.bytes.size());
    at = w.begin(kEnd);
    w.u32(crc);
    w.end(at);
    return std::move(w.bytes);
}

Contents parse(const unsigned char *data, size_t size) {
    if (size < kHeaderSize || std::memcmp(data, kMagic, sizeof kMagic) != 0)
        fail(NN_ERR_CORRUPT, size < kHeaderSize ? "too short to be a libnn model" : "not a libnn model (wrong magic)");
    Reader header(data + sizeof kMagic, 8, "the header");
    const uint32_t version = header.u32();
    if (version == 0) fail(NN_ERR_CORRUPT, "format version 0");
    if (version > kFormatVersion)
        fail(NN_ERR_VERSION, "format version " + std::to_string(version) + " is newer than this libnn reads (" +
                                 std::to_string(kFormatVersion) + ")");

    // The last section must be END, exactly filling the rest, with the CRC of all before.
    const size_t end_at = size >= kSectionHeader + 4 ? size - kSectionHeader - 4 : 0;
    if (end_at < kHeaderSize) fail(NN_ERR_CORRUPT, "the file is truncated");
    Reader end(data + end_at, kSectionHeader + 4, "the end section");
    if (end.u32() != kEnd || end.u32() != 0 || end.u64() != 4) fail(NN_ERR_CORRUPT, "the file is truncated or has trailing bytes (no end section)");
    const uint32_t stored = end.u32();
    if (crc32(data, end_at) != stored) fail(NN_ERR_CORRUPT, "checksum mismatch: the file is damaged");

    Contents c;
    bool have_arch = false, have_params = false, have_meta = false, have_epochs = false;
    std::vector<EpochRecord> epochs;
    Reader sections(data + kHeaderSize, end_at - kHeaderSize, "the section list");
    std::vector<std::pair<uint32_t, Reader>> found;
    while (sections.left() > 0) {
        const uint32_t t = sections.u32();
        sections.u32();
        const uint64_t n = sections.u64();
        const size_t len = sections.count(n, 1, "section byte");
        const size_t off = end_at - sections.left();
        found.emplace_back(t, Reader(data + off, len, "a section"));
        sections.skip(len);
    }
    for (auto &[t, r] : found) {
        if (t == kArch) {
            if (have_arch) fail(NN_ERR_CORRUPT, "two architecture sections");
            c.shape = read_arch(r);
            have_arch = true;
        }
    }
    if (!have_arch) fail(NN_ERR_CORRUPT, "no architecture section");
    for (auto &[t, r] : found) {
        if (t == kParams) {
            if (have_params) fail(NN_ERR_CORRUPT, "two parameter sections");
            c.params = read_params(r, c.shape);
            have_params = true;
        } else if (t == kTraining) {
            if (c.has_training_state) fail(NN_ERR_CORRUPT, "two training-state sections");
            read_training(r, c);
        } else if (t == kOptimizer) {
            if (c.has_optimizer) fail(NN_ERR_CORRUPT, "two optimizer sections");
            c.optimizer = read_optimizer(r, c.shape);
            c.has_optimizer = true;
        } else if (t == kEpochs) {
            if (have_epochs) fail(NN_ERR_CORRUPT, "two epoch-record sections");
            epochs = read_epochs(r);
            have_epochs = true;
        } else if (t == kMeta) {
            if (have_meta) fail(NN_ERR_CORRUPT, "two metadata sections");
            read_meta(r, c);
            have_meta = true;
        } else if (t == kEnd) {
            fail(NN_ERR_CORRUPT, "an end section before the end");
        }
        // ARCH handled above; unknown tags are skipped (sections added by later versions).
    }
    if (!have_params) fail(NN_ERR_CORRUPT, "no parameter section");
    // OPTM and EPCH extend TRNG: checked on their own above, used only beside it.
    if (c.has_training_state) {
        if (have_epochs) merge_epochs(c, epochs);
    } else {
        c.has_optimizer = false;
        c.optimizer = OptimizerState{};
    }
    return c;
}

}  // namespace nn::file
