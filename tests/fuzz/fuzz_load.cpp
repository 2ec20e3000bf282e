// libFuzzer target for the model file reader (docs/model-format.md) through the C API.
//
// Each input is loaded twice: as given, and with its last 20 bytes replaced by a valid
// "END " section whose CRC-32 covers everything before it. Mutated bytes almost never
// carry a correct checksum, so without the second load the fuzzer would only ever reach
// the checksum test; with it, every section parser sees the mutations.
//
// A load may fail (with one of the statuses nn.h documents for it); what must never
// happen is a crash, a sanitizer report, a leak, or a broken invariant, and those are
// what abort() reports:
//   - a failed load leaves *out NULL, returns a documented status and sets a message;
//   - a loaded model saves (lossless, with its training state) and the bytes load again;
//   - saving that reloaded model gives the same bytes (save ∘ load is the identity on
//     what the library itself writes), the same shape and the same parameters;
//   - a float16 save without training state either succeeds and loads, or is refused
//     with NN_ERR_NON_FINITE (a parameter beyond ±65504).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nn/nn.h"

namespace {

[[noreturn]] void broken(const char *what, nn_status s) {
    std::fprintf(stderr, "fuzz_load: invariant broken: %s (status %d: %s; last error: %s)\n", what, int(s),
                 nn_status_string(s), nn_last_error_message());
    std::abort();
}

uint32_t crc32(const uint8_t *p, size_t n) {
    static uint32_t table[256];
    static bool ready = false;
    if (!ready) {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return ~c;
}

std::vector<uint8_t> save(nn_model *m, const nn_save_options *opt, nn_status *status) {
    size_t need = 0;
    *status = nn_save_to_buffer(m, nullptr, 0, &need, opt);
    if (*status != NN_OK) return {};
    std::vector<uint8_t> bytes(need);
    size_t got = 0;
    *status = nn_save_to_buffer(m, bytes.data(), bytes.size(), &got, opt);
    if (*status == NN_OK && got != need) broken("nn_save_to_buffer's size query and its write disagree", *status);
    return bytes;
}

std::vector<double> params(nn_model *m) {
    size_t n = 0;
    nn_status s = nn_param_count(m, &n);
    if (s != NN_OK) broken("nn_param_count failed on a loaded model", s);
    std::vector<double> p(n + 1);  // never empty: data() is then never NULL
    s = nn_get_params(m, p.data(), p.size());
    if (s != NN_OK) broken("nn_get_params failed on a loaded model", s);
    p.pop_back();
    return p;
}

std::vector<size_t> layers(nn_model *m) {
    size_t n = 0;
    nn_status s = nn_model_layer_count(m, &n);
    if (s != NN_OK) broken("nn_model_layer_count failed on a loaded model", s);
    std::vector<size_t> v(n);
    s = nn_model_layer_sizes(m, v.data(), v.size());
    if (s != NN_OK) broken("nn_model_layer_sizes failed on a loaded model", s);
    return v;
}

nn_model *load(const uint8_t *data, size_t size) {
    nn_model *m = reinterpret_cast<nn_model *>(uintptr_t(1));  // must be overwritten
    const nn_status s = nn_load_from_buffer(&m, data, size);
    if (s == NN_OK) {
        if (!m) broken("nn_load_from_buffer returned NN_OK and a NULL model", s);
        return m;
    }
    if (m) broken("a failed nn_load_from_buffer left *out non-NULL", s);
    if (s != NN_ERR_CORRUPT && s != NN_ERR_VERSION && s != NN_ERR_OUT_OF_MEMORY)
        broken("nn_load_from_buffer returned a status nn.h does not document for it", s);
    if (nn_last_error_message()[0] == '\0') broken("a failed load set no error message", s);
    return nullptr;
}

void check_loaded(nn_model *m) {
    // The shape and the parameters agree: Σ (in·out + out) over the layers, without
    // wrapping around.
    const std::vector<size_t> sizes = layers(m);
    if (sizes.size() < 2) broken("a loaded model has fewer than two layer sizes", NN_OK);
    size_t expected = 0;
    for (size_t l = 0; l + 1 < sizes.size(); ++l) {
        size_t w;
        if (__builtin_mul_overflow(sizes[l], sizes[l + 1], &w) || __builtin_add_overflow(w, sizes[l + 1], &w) ||
            __builtin_add_overflow(expected, w, &expected))
            broken("a loaded model's parameter count overflows size_t", NN_OK);
    }
    size_t count = 0;
    nn_status s = nn_param_count(m, &count);
    if (s != NN_OK || count != expected) broken("a loaded model's parameter count does not match its layer sizes", s);

    nn_save_options opt;
    nn_save_options_init(&opt);  // the model's own dtype, with training state: lossless
    const std::vector<uint8_t> once = save(m, &opt, &s);
    if (s != NN_OK) broken("a loaded model cannot be saved losslessly", s);

    nn_model *again = nullptr;
    s = nn_load_from_buffer(&again, once.data(), once.size());
    if (s != NN_OK) broken("what nn_save_to_buffer wrote does not load", s);
    const std::vector<uint8_t> twice = save(again, &opt, &s);
    if (s != NN_OK) broken("a reloaded model cannot be saved", s);
    if (twice != once) broken("save(load(save(model))) differs from save(model)", s);
    if (layers(again) != layers(m)) broken("the reloaded model has other layer sizes", s);
    const std::vector<double> a = params(m), b = params(again);
    if (a.size() != b.size() || (!a.empty() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) != 0))
        broken("the reloaded model has other parameters", s);
    nn_destroy(again);

    nn_save_options half;
    nn_save_options_init(&half);
    half.storage = NN_DTYPE_FLOAT16;
    half.include_training_state = 0;
    const std::vector<uint8_t> small = save(m, &half, &s);
    if (s == NN_OK) {
        nn_model *h = nullptr;
        s = nn_load_from_buffer(&h, small.data(), small.size());
        if (s != NN_OK) broken("a float16 save does not load", s);
        if (layers(h) != layers(m)) broken("the float16 reload has other layer sizes", s);
        nn_destroy(h);
    } else if (s != NN_ERR_NON_FINITE) {
        broken("a float16 save failed other than by overflow", s);
    }
}

void one(const uint8_t *data, size_t size) {
    nn_model *m = load(data, size);
    if (!m) return;
    check_loaded(m);
    nn_destroy(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size);
    // The same bytes with a valid checksum: "END " · reserved 0 · length 4 · CRC-32 of
    // everything before the section header, in place of the last 20 bytes.
    constexpr size_t kHeader = 20, kEnd = 20;
    if (size >= kHeader + kEnd) {
        std::vector<uint8_t> fixed(data, data + size);
        uint8_t *e = fixed.data() + size - kEnd;
        const uint8_t trailer[16] = {'E', 'N', 'D', ' ', 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0};
        std::memcpy(e, trailer, sizeof trailer);
        const uint32_t crc = crc32(fixed.data(), size - kEnd);
        for (int i = 0; i < 4; ++i) e[16 + i] = uint8_t(crc >> (8 * i));
        if (std::memcmp(fixed.data(), data, size) != 0) one(fixed.data(), fixed.size());
    }
    return 0;
}
