/* Damaged and hostile model files: every truncation and every flipped byte of a real file,
 * trailing bytes, wrong magic, newer versions, and files whose checksum is right but whose
 * contents are impossible (absurd sizes and counts, non-finite parameters, missing or
 * repeated sections). nn_load_from_buffer must answer NN_ERR_CORRUPT (or NN_ERR_VERSION),
 * leave *out NULL, never crash and never allocate from an unchecked field. Unknown
 * sections, as later versions may add, must be skipped. */
#define _XOPEN_SOURCE 700
#include "capi_test_util.h"
#include "model_file_bytes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PARAMS 64

/* The saved {2,3,2} float64 model, trained for two epochs (so its training state has
 * records) and with two metadata strings: every section a file can have. */
static unsigned char *base;
static size_t base_size;
static double base_params[MAX_PARAMS];
static size_t base_n_params;

/* ---- bytes --------------------------------------------------------------------------------- */

/* A copy of the base file with the section tagged `tag` repeated right after itself. */
static unsigned char *with_section_twice(const char *tag, size_t *out_size)
{
    const size_t at = find_section(base, base_size, tag);
    const size_t len = SECTION + (size_t)get_u64(base + at + 8);
    unsigned char *c = with_inserted(base, base_size, at + len, base + at, len, out_size);
    fix_crc(c, *out_size);
    return c;
}

/* ---- expectations ---------------------------------------------------------------------- */

/* expect_corrupt, then frees `buf` (also when the expectation fails). */
static void expect_corrupt_free(unsigned char *buf, size_t size, const char *what)
{
    nn_model *out = capi_sentinel_model();
    const nn_status s = load_copy(buf, size, &out);
    if (s == NN_OK)
        nn_destroy(out);
    else
        expect_corrupt(buf, size, what);
    free(buf);
    if (s == NN_OK) fail_msg("%s: loaded (NN_OK), expected NN_ERR_CORRUPT", what);
}

/* Patches a u32 / u64 at `off` of a copy of the base, fixes the CRC, expects CORRUPT. */
static void corrupt_u32(size_t off, uint32_t v, const char *what)
{
    unsigned char *c = copy_of(base, base_size);
    put_u32(c + off, v);
    fix_crc(c, base_size);
    expect_corrupt(c, base_size, what);
    free(c);
}

static nn_model *load_ok(const unsigned char *buf, size_t size)
{
    nn_model *out = capi_sentinel_model();
    CAPI_OK(nn_load_from_buffer(&out, buf, size));
    assert_non_null(out);
    assert_true(out != capi_sentinel_model());
    return out;
}

static void assert_base_params(nn_model *m)
{
    double p[MAX_PARAMS];
    size_t n = 0;
    CAPI_OK(nn_param_count(m, &n));
    assert_int_equal(n, base_n_params);
    CAPI_OK(nn_get_params(m, p, MAX_PARAMS));
    assert_memory_equal(p, base_params, n * sizeof(double));
}

static unsigned char *saved_bytes(nn_model *m, nn_dtype storage, size_t *size)
{
    nn_save_options o;
    unsigned char *buf;
    nn_save_options_init(&o);
    o.storage = storage;
    CAPI_OK(nn_save_to_buffer(m, NULL, 0, size, &o));
    buf = malloc(*size);
    assert_non_null(buf);
    CAPI_OK(nn_save_to_buffer(m, buf, *size, size, &o));
    return buf;
}

static nn_model *base_model(nn_dtype dtype)
{
    static const size_t sizes[] = {2, 3, 2};
    double x[40];
    int32_t t[20];
    size_t i;
    nn_fit_options o = capi_fit_options(2, 5, 0.5, 2);
    nn_model *m = capi_model(dtype, sizes, 3, 7);
    capi_blobs(x, t, 20, 3);
    for (i = 0; i < 20; ++i) t[i] %= 2;
    CAPI_OK(nn_fit(m, x, NN_DTYPE_FLOAT64, 20, 2, t, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    CAPI_OK(nn_set_metadata(m, "book", "ch01"));
    CAPI_OK(nn_set_metadata(m, "note", "a small model"));
    return m;
}

static int setup_base(void **state)
{
    nn_model *m = base_model(NN_DTYPE_FLOAT64);
    (void)state;
    base = saved_bytes(m, NN_DTYPE_MODEL, &base_size);
    CAPI_OK(nn_param_count(m, &base_n_params));
    CAPI_OK(nn_get_params(m, base_params, MAX_PARAMS));
    nn_destroy(m);
    return 0;
}

static int teardown_base(void **state)
{
    (void)state;
    free(base);
    return 0;
}

/* ---- the base file itself ---------------------------------------------------------------- */

static void test_the_base_file_is_what_the_format_says(void **state)
{
    static const unsigned char magic[12] = {0x89, 'N', 'N', 'M', 'O', 'D', 'E', 'L', '\r', '\n', 0x1a, '\n'};
    nn_model *m;
    (void)state;
    assert_memory_equal(base, magic, 12);
    assert_int_equal(get_u32(base + 12), 1);
    assert_int_equal(get_u32(base + 16), 0);
    assert_int_equal(get_u32(base + base_size - END_SIZE), tag_of("END "));
    assert_int_equal(get_u64(base + base_size - END_SIZE + 8), 4);
    assert_int_equal(get_u32(base + base_size - 4), crc32_of(base, base_size - END_SIZE));
    (void)payload_of(base, base_size, "ARCH");
    (void)payload_of(base, base_size, "PARM");
    (void)payload_of(base, base_size, "TRNG");
    (void)payload_of(base, base_size, "META");
    m = load_ok(base, base_size);
    assert_base_params(m);
    nn_destroy(m);
}

/* ---- 5. damage ------------------------------------------------------------------------------ */

static void test_every_truncation_is_corrupt(void **state)
{
    char what[64], dir[] = "/tmp/nn_model_trunc_XXXXXX", path[128];
    size_t len;
    (void)state;
    for (len = 0; len < base_size; ++len) {
        snprintf(what, sizeof what, "truncated to %u bytes", (unsigned)len);
        expect_corrupt(base, len, what);
    }
    /* through a file too */
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.nnm", dir);
    for (len = 0; len < base_size; len += len < 40 ? 1 : 97) {
        FILE *f = fopen(path, "wb");
        nn_model *out = capi_sentinel_model();
        assert_non_null(f);
        assert_int_equal(fwrite(base, 1, len, f), len);
        fclose(f);
        CAPI_FAIL(NN_ERR_CORRUPT, nn_load(&out, path));
        assert_null(out);
    }
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_every_flipped_byte_is_refused(void **state)
{
    static const unsigned char masks[] = {0xff, 0x01, 0x80};
    unsigned char *c = copy_of(base, base_size);
    char what[64];
    size_t at, k;
    (void)state;
    for (k = 0; k < sizeof masks; ++k)
        for (at = 0; at < base_size; ++at) {
            const int in_version = at >= 12 && at < 16;
            c[at] ^= masks[k];
            snprintf(what, sizeof what, "byte %u ^ 0x%02x", (unsigned)at, masks[k]);
            expect_fails(NN_ERR_CORRUPT, in_version ? NN_ERR_VERSION : NN_ERR_CORRUPT, c, base_size, what);
            c[at] ^= masks[k];
        }
    free(c);
}

static void test_trailing_bytes_are_corrupt(void **state)
{
    unsigned char *c;
    size_t size = 0;
    static const unsigned char zeros[64];
    (void)state;
    c = with_inserted(base, base_size, base_size, zeros, 1, &size);
    expect_corrupt(c, size, "one trailing zero");
    free(c);
    c = with_inserted(base, base_size, base_size, (const unsigned char *)"garbage", 7, &size);
    expect_corrupt(c, size, "trailing text");
    free(c);
    c = with_inserted(base, base_size, base_size, base, base_size, &size);
    expect_corrupt(c, size, "the file twice");
    free(c);
    /* a second, valid END section after the first: an END before the end */
    c = with_inserted(base, base_size, base_size, base + base_size - END_SIZE, END_SIZE, &size);
    fix_crc(c, size);
    expect_corrupt(c, size, "two END sections");
    free(c);
}

static void test_wrong_magic_is_corrupt(void **state)
{
    static const unsigned char png[12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    unsigned char *c = copy_of(base, base_size);
    size_t size = 0;
    (void)state;
    memcpy(c, png, 12);
    fix_crc(c, base_size);
    expect_corrupt(c, base_size, "PNG magic");
    free(c);
    /* a text-mode transfer that turned the magic's CR LF into LF */
    c = copy_of(base, base_size);
    memmove(c + 8, c + 9, base_size - 9);
    size = base_size - 1;
    fix_crc(c, size);
    expect_corrupt(c, size, "CR dropped from the magic");
    free(c);
    expect_corrupt((const unsigned char *)"\x89NNMODEL\r\n\x1a\n", 12, "the magic alone");
}

static void test_a_newer_version_is_refused_with_version(void **state)
{
    const uint32_t newer[] = {2, 3, 0x80000000u, 0xffffffffu};
    unsigned char *c = copy_of(base, base_size);
    size_t i;
    (void)state;
    for (i = 0; i < sizeof newer / sizeof newer[0]; ++i) {
        put_u32(c + 12, newer[i]);
        fix_crc(c, base_size);
        expect_fails(NN_ERR_VERSION, NN_ERR_VERSION, c, base_size, "a newer version");
    }
    free(c);
    corrupt_u32(12, 0, "version 0");
}

/* The flags field is reserved: version-1 readers ignore it (docs/model-format.md). */
static void test_the_flags_field_is_ignored(void **state)
{
    unsigned char *c = copy_of(base, base_size);
    nn_model *m;
    (void)state;
    put_u32(c + 16, 0x5a5a5a5au);
    fix_crc(c, base_size);
    m = load_ok(c, base_size);
    assert_base_params(m);
    nn_destroy(m);
    free(c);
}

/* ---- impossible contents with a correct checksum --------------------------------------------- */

typedef struct patch {
    const char *tag; /* section; NULL ends the list */
    size_t off;      /* from the section's header (its payload starts at 16) */
    int width;       /* 1, 2, 4 or 8 bytes */
    uint64_t value;
} patch;

typedef struct absurd {
    const char *what;
    patch p[3];
} absurd;

#define P(tag, off, width, value) {(tag), (off), (width), (uint64_t)(value)}
#define NONE {NULL, 0, 0, 0}
#define TWO40 ((uint64_t)1 << 40)

static unsigned char *patched(const patch *p, size_t *size)
{
    unsigned char *c = copy_of(base, base_size);
    size_t k;
    for (k = 0; k < 3 && p[k].tag != NULL; ++k) {
        unsigned char *at = c + find_section(base, base_size, p[k].tag) + p[k].off;
        if (p[k].width == 1) *at = (unsigned char)p[k].value;
        else if (p[k].width == 2) { at[0] = (unsigned char)p[k].value; at[1] = (unsigned char)(p[k].value >> 8); }
        else if (p[k].width == 4) put_u32(at, (uint32_t)p[k].value);
        else put_u64(at, p[k].value);
    }
    fix_crc(c, base_size);
    *size = base_size;
    return c;
}

/* Fills `cases` (up to `cap`) with files whose CRC is right and whose contents are not. */
static size_t absurd_cases(absurd *cases, size_t cap)
{
    const size_t trng = payload_of(base, base_size, "TRNG") - SECTION;
    const uint64_t nrec = get_u64(base + trng + SECTION + 2520);
    const size_t nep = SECTION + 2528 + 32 * (size_t)nrec; /* TRNG: epoch loss count */
    const uint64_t np = base_n_params, arch_len = get_u64(base + find_section(base, base_size, "ARCH") + 8);
    const absurd all[] = {
        {"layer size 2^40+1", {P("ARCH", 40, 8, TWO40 + 1), NONE, NONE}},
        {"layer size 0", {P("ARCH", 40, 8, 0), NONE, NONE}},
        {"input size 0", {P("ARCH", 32, 8, 0), NONE, NONE}},
        {"100000 layer sizes", {P("ARCH", 16, 4, 100000), NONE, NONE}},
        {"1025 layer sizes", {P("ARCH", 16, 4, 1025), NONE, NONE}},
        {"2^32-1 layer sizes", {P("ARCH", 16, 4, 0xffffffffu), NONE, NONE}},
        {"4 layer sizes in a payload of 3", {P("ARCH", 16, 4, 4), NONE, NONE}},
        {"2 layer sizes in a payload of 3", {P("ARCH", 16, 4, 2), NONE, NONE}},
        {"1 layer size", {P("ARCH", 16, 4, 1), NONE, NONE}},
        {"0 layer sizes", {P("ARCH", 16, 4, 0), NONE, NONE}},
        {"2^20 x 2^20 net, parameter count matching",
         {P("ARCH", 32, 8, 1 << 20), P("ARCH", 40, 8, 1 << 20),
          P("PARM", 24, 8, TWO40 + 3 * ((uint64_t)1 << 20) + 2)}},
        {"2^20 x 2^20 net", {P("ARCH", 32, 8, 1 << 20), P("ARCH", 40, 8, 1 << 20), NONE}},
        {"2^40 x 2^40 net", {P("ARCH", 32, 8, TWO40), P("ARCH", 40, 8, TWO40), NONE}},
        {"2^24 x 2^24 net", {P("ARCH", 32, 8, 1 << 24), P("ARCH", 40, 8, 1 << 24), NONE}},
        {"2^40 x 1 net, parameter count matching",
         {P("ARCH", 32, 8, TWO40), P("ARCH", 40, 8, 1), P("PARM", 24, 8, TWO40 + 5)}},
        {"activation 4", {P("ARCH", 20, 4, 4), NONE, NONE}},
        {"activation 2^32-1", {P("ARCH", 20, 4, 0xffffffffu), NONE, NONE}},
        {"loss 2", {P("ARCH", 24, 4, 2), NONE, NONE}},
        {"compute dtype float16", {P("ARCH", 28, 4, 2), NONE, NONE}},
        {"compute dtype 3", {P("ARCH", 28, 4, 3), NONE, NONE}},
        {"softmax with one output", {P("ARCH", 48, 8, 1), NONE, NONE}},
        {"ARCH length 2^63", {P("ARCH", 8, 8, (uint64_t)1 << 63), NONE, NONE}},
        {"ARCH length 2^64-1", {P("ARCH", 8, 8, UINT64_MAX), NONE, NONE}},
        {"ARCH length + 1", {P("ARCH", 8, 8, arch_len + 1), NONE, NONE}},
        {"ARCH length - 1", {P("ARCH", 8, 8, arch_len - 1), NONE, NONE}},
        {"storage 3", {P("PARM", 16, 4, 3), NONE, NONE}},
        {"storage 2^32-1", {P("PARM", 16, 4, 0xffffffffu), NONE, NONE}},
        {"parameter count - 1", {P("PARM", 24, 8, np - 1), NONE, NONE}},
        {"parameter count + 1", {P("PARM", 24, 8, np + 1), NONE, NONE}},
        {"parameter count 2^62", {P("PARM", 24, 8, (uint64_t)1 << 62), NONE, NONE}},
        {"parameter count 2^64-1", {P("PARM", 24, 8, UINT64_MAX), NONE, NONE}},
        {"PARM length 2^64-1", {P("PARM", 8, 8, UINT64_MAX), NONE, NONE}},
        {"stream position 625", {P("TRNG", 24, 4, 625), NONE, NONE}},
        {"stream position 2^32-1", {P("TRNG", 24, 4, 0xffffffffu), NONE, NONE}},
        {"stream position 2^31", {P("TRNG", 24, 4, 0x80000000u), NONE, NONE}},
        {"gauss flag 2", {P("TRNG", 28, 4, 2), NONE, NONE}},
        {"pending gauss NaN", {P("TRNG", 28, 4, 1), P("TRNG", 32, 8, 0x7ff8000000000000ull), NONE}},
        {"loss records 2^60", {P("TRNG", SECTION + 2520, 8, (uint64_t)1 << 60), NONE, NONE}},
        {"loss records 2^64-1", {P("TRNG", SECTION + 2520, 8, UINT64_MAX), NONE, NONE}},
        {"loss records + 1", {P("TRNG", SECTION + 2520, 8, nrec + 1), NONE, NONE}},
        {"epoch losses 2^61", {P("TRNG", nep, 8, (uint64_t)1 << 61), NONE, NONE}},
        {"epoch losses 2^64-1", {P("TRNG", nep, 8, UINT64_MAX), NONE, NONE}},
        {"metadata pairs 2^32-1", {P("META", 16, 4, 0xffffffffu), NONE, NONE}},
        {"metadata pairs 3 of 2", {P("META", 16, 4, 3), NONE, NONE}},
        {"metadata key length 0", {P("META", 20, 4, 0), NONE, NONE}},
        {"metadata key length 257", {P("META", 20, 4, 257), NONE, NONE}},
        {"metadata key length 2^32-1", {P("META", 20, 4, 0xffffffffu), NONE, NONE}},
        {"metadata value length 2^31", {P("META", 28, 4, 0x80000000u), NONE, NONE}},
        {"metadata value length 65537", {P("META", 28, 4, 65537), NONE, NONE}},
        {"NUL in a metadata key", {P("META", 25, 1, 0), NONE, NONE}},
        {"NUL in a metadata value", {P("META", 33, 1, 0), NONE, NONE}},
        {"no ARCH section", {P("ARCH", 0, 4, tag_of("XRCH")), NONE, NONE}},
        {"no PARM section", {P("PARM", 0, 4, tag_of("XARM")), NONE, NONE}},
        {"an END section before the end", {P("META", 0, 4, tag_of("END ")), NONE, NONE}},
    };
    const size_t n = sizeof all / sizeof all[0];
    assert_true(n <= cap);
    memcpy(cases, all, sizeof all);
    return n;
}

static void test_impossible_contents_with_a_correct_checksum_are_corrupt(void **state)
{
    absurd cases[80];
    const size_t n = absurd_cases(cases, 80);
    struct rusage ru;
    size_t i, size = 0;
    (void)state;
    /* the base's metadata is ordered book, note: "book" (4) "ch01" (4) first */
    assert_int_equal(get_u32(base + payload_of(base, base_size, "META") + 4), 4);
    assert_memory_equal(base + payload_of(base, base_size, "META") + 8, "book", 4);
    assert_memory_equal(base + payload_of(base, base_size, "META") + 16, "ch01", 4);
    for (i = 0; i < n; ++i) {
        unsigned char *c = patched(cases[i].p, &size);
        expect_corrupt(c, size, cases[i].what);
        free(c);
    }
    /* nothing above may have made the process big */
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    if (ru.ru_maxrss > 1024L * 1024L) print_error("peak RSS %ld KiB\n", ru.ru_maxrss);
    assert_true(ru.ru_maxrss <= 1024L * 1024L);
}

/* The same files in a child whose address space may grow by only 256 MiB: an allocation
 * sized from an unchecked field would fail there (and be reported as something other than
 * NN_ERR_CORRUPT). The sanitizers reserve terabytes of address space: skipped under them. */
static void test_impossible_sizes_allocate_nothing_big(void **state)
{
    absurd cases[80];
    const size_t n = absurd_cases(cases, 80);
    pid_t pid;
    int status = 0;
    (void)state;
    if (UNDER_SANITIZER) {
        print_message("skipped under a sanitizer (RLIMIT_AS)\n");
        skip();
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t i, size = 0;
        if (capi_limit_address_space((size_t)256 << 20) != 0) _exit(3);
        for (i = 0; i < n; ++i) {
            unsigned char *c = patched(cases[i].p, &size);
            nn_model *out = NULL;
            nn_status s = load_copy(c, size, &out);
            free(c);
            if (s != NN_ERR_CORRUPT || out != NULL) {
                fprintf(stderr, "%s: status %d (%s): %s\n", cases[i].what, (int)s, nn_status_string(s),
                        nn_last_error_message());
                _exit(10);
            }
        }
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A copy of `buf` whose section `tag` has `payload` instead (CRC fixed). */
static unsigned char *with_payload(const unsigned char *buf, size_t size, const char *tag,
                                   const unsigned char *payload, size_t len, size_t *out_size)
{
    const size_t at = find_section(buf, size, tag);
    const size_t old_end = at + SECTION + (size_t)get_u64(buf + at + 8);
    unsigned char *c = malloc(size - (old_end - at) + SECTION + len);
    assert_non_null(c);
    memcpy(c, buf, at + SECTION);
    put_u64(c + at + 8, len);
    memcpy(c + at + SECTION, payload, len);
    memcpy(c + at + SECTION + len, buf + old_end, size - old_end);
    *out_size = size - (old_end - at) + SECTION + len;
    fix_crc(c, *out_size);
    return c;
}

static void test_more_layer_sizes_than_allowed_are_corrupt(void **state)
{
    const size_t n = 1025, len = 16 + 8 * n;
    unsigned char *payload = calloc(len, 1), *c;
    size_t i, size = 0;
    (void)state;
    assert_non_null(payload);
    put_u32(payload, (uint32_t)n);
    put_u32(payload + 12, 1); /* float64 */
    for (i = 0; i < n; ++i) put_u64(payload + 16 + 8 * i, 2);
    c = with_payload(base, base_size, "ARCH", payload, len, &size);
    expect_corrupt(c, size, "1025 layer sizes, all present");
    free(c);
    free(payload);
}

static void test_non_finite_parameters_are_corrupt(void **state)
{
    nn_model *m64 = base_model(NN_DTYPE_FLOAT64), *m32 = base_model(NN_DTYPE_FLOAT32);
    unsigned char *f16, *f32, *f64of32, *c;
    size_t s16 = 0, s32 = 0, s64 = 0, p, k;
    const uint64_t bad64[] = {0x7ff8000000000000ull, 0x7ff0000000000000ull, 0xfff0000000000000ull,
                              0x7ff0000000000001ull};
    const uint16_t bad16[] = {0x7e00, 0x7c00, 0xfc00, 0x7c01};
    const uint32_t bad32[] = {0x7fc00000u, 0x7f800000u, 0xff800000u};
    (void)state;
    p = payload_of(base, base_size, "PARM") + 16;
    for (k = 0; k < 4; ++k) {
        c = copy_of(base, base_size);
        put_u64(c + p + 8 * (k % 2 ? base_n_params - 1 : 0), bad64[k]);
        fix_crc(c, base_size);
        expect_corrupt(c, base_size, "non-finite float64 parameter");
        free(c);
    }
    f16 = saved_bytes(m64, NN_DTYPE_FLOAT16, &s16);
    p = payload_of(f16, s16, "PARM") + 16;
    assert_int_equal(get_u32(f16 + p - 16), 2);
    for (k = 0; k < 4; ++k) {
        c = copy_of(f16, s16);
        c[p + 2 * k] = (unsigned char)bad16[k];
        c[p + 2 * k + 1] = (unsigned char)(bad16[k] >> 8);
        fix_crc(c, s16);
        expect_corrupt(c, s16, "non-finite float16 parameter");
        free(c);
    }
    f32 = saved_bytes(m64, NN_DTYPE_FLOAT32, &s32);
    p = payload_of(f32, s32, "PARM") + 16;
    assert_int_equal(get_u32(f32 + p - 16), 0);
    for (k = 0; k < 3; ++k) {
        c = copy_of(f32, s32);
        put_u32(c + p + 4 * k, bad32[k]);
        fix_crc(c, s32);
        expect_corrupt(c, s32, "non-finite float32 parameter");
        free(c);
    }
    /* a float32 model stored as float64 with a value float32 cannot hold */
    f64of32 = saved_bytes(m32, NN_DTYPE_FLOAT64, &s64);
    p = payload_of(f64of32, s64, "PARM") + 16;
    assert_int_equal(get_u32(f64of32 + p - 16), 1);
    c = copy_of(f64of32, s64);
    put_f64(c + p, 1e300);
    fix_crc(c, s64);
    expect_corrupt(c, s64, "1e300 in a float32 model");
    put_f64(c + p, 3.5e38);
    fix_crc(c, s64);
    expect_corrupt(c, s64, "3.5e38 in a float32 model");
    put_f64(c + p, 1e300);
    put_u32(c + payload_of(c, s64, "ARCH") + 12, 1); /* the same value in a float64 model loads */
    fix_crc(c, s64);
    {
        nn_model *l = load_ok(c, s64);
        double q[MAX_PARAMS];
        CAPI_OK(nn_get_params(l, q, MAX_PARAMS));
        assert_true(q[0] == 1e300);
        nn_destroy(l);
    }
    free(c);
    free(f16);
    free(f32);
    free(f64of32);
    nn_destroy(m64);
    nn_destroy(m32);
}

/* Diverged runs are recorded as they were: non-finite losses in the history load. */
static void test_non_finite_losses_in_the_history_load(void **state)
{
    const size_t t = payload_of(base, base_size, "TRNG");
    const uint64_t nrec = get_u64(base + t + 2520);
    unsigned char *c = copy_of(base, base_size);
    nn_loss_record rec[64];
    double ep[64];
    size_t n = 0;
    nn_model *m;
    (void)state;
    assert_true(nrec >= 1 && nrec <= 64);
    put_f64(c + t + 2528 + 24, NAN);                  /* records[0].loss */
    put_f64(c + t + 2528 + 32 * (size_t)nrec + 8, HUGE_VAL); /* epoch_losses[0] */
    fix_crc(c, base_size);
    m = load_ok(c, base_size);
    CAPI_OK(nn_get_loss_history(m, rec, 64, &n));
    assert_int_equal(n, nrec);
    assert_true(isnan(rec[0].loss));
    CAPI_OK(nn_get_epoch_losses(m, ep, 64, &n));
    assert_int_equal(n, 2);
    assert_true(isinf(ep[0]));
    nn_destroy(m);
    free(c);
}

/* docs/model-format.md: each section may appear once. */
static void test_repeated_sections_are_corrupt(void **state)
{
    static const char *const tags[] = {"ARCH", "PARM", "TRNG", "META"};
    unsigned char *c;
    size_t size = 0, k;
    (void)state;
    for (k = 0; k < 4; ++k) {
        char what[32];
        c = with_section_twice(tags[k], &size);
        snprintf(what, sizeof what, "%s twice", tags[k]);
        expect_corrupt_free(c, size, what);
    }
}

/* docs/model-format.md: metadata keys are unique within the META section. */
static void test_a_repeated_metadata_key_is_corrupt(void **state)
{
    unsigned char *c, meta[64];
    size_t size = 0, k, len = 0;
    (void)state;
    put_u32(meta, 2);
    len = 4;
    for (k = 0; k < 2; ++k) {
        put_u32(meta + len, 4);
        memcpy(meta + len + 4, "book", 4);
        put_u32(meta + len + 8, 4);
        memcpy(meta + len + 12, k ? "ch02" : "ch01", 4);
        len += 16;
    }
    c = with_payload(base, base_size, "META", meta, len, &size);
    expect_corrupt_free(c, size, "a metadata key twice");
    /* the same payload with distinct keys is fine: the builder is right */
    meta[4 + 16 + 4] = 'B';
    c = with_payload(base, base_size, "META", meta, len, &size);
    nn_destroy(load_ok(c, size));
    free(c);
}

static void assert_loads_like_the_base(const unsigned char *buf, size_t size, int history, int meta)
{
    nn_model *m = load_ok(buf, size), *b = load_ok(base, base_size);
    size_t nm = 0, nb = 0;
    char out[16];
    assert_base_params(m);
    CAPI_OK(nn_get_loss_history(m, NULL, 0, &nm));
    CAPI_OK(nn_get_loss_history(b, NULL, 0, &nb));
    assert_int_equal(nm, history ? nb : 0);
    if (meta) {
        CAPI_OK(nn_get_metadata(m, "book", out, sizeof out, &nm));
        assert_string_equal(out, "ch01");
    } else {
        CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_get_metadata(m, "book", out, sizeof out, &nm));
    }
    nn_destroy(m);
    nn_destroy(b);
}

/* Later versions may add sections; this reader must skip what it does not know. */
static void test_unknown_sections_are_skipped(void **state)
{
    unsigned char xtra[SECTION + 5], *c, *d;
    size_t size = 0, size2 = 0;
    (void)state;
    put_u32(xtra, tag_of("XTRA"));
    put_u32(xtra + 4, 0);
    put_u64(xtra + 8, 5);
    memcpy(xtra + SECTION, "hello", 5);
    c = with_inserted(base, base_size, base_size - END_SIZE, xtra, sizeof xtra, &size);
    fix_crc(c, size);
    assert_loads_like_the_base(c, size, 1, 1);
    /* and an empty one first, right after the header */
    put_u64(xtra + 8, 0);
    d = with_inserted(c, size, HEADER, xtra, SECTION, &size2);
    fix_crc(d, size2);
    assert_loads_like_the_base(d, size2, 1, 1);
    free(c);
    free(d);
    /* the optional sections under unknown tags: the model loads without them */
    c = copy_of(base, base_size);
    put_u32(c + find_section(c, base_size, "TRNG"), tag_of("XRNG"));
    put_u32(c + find_section(c, base_size, "META"), tag_of("XETA"));
    fix_crc(c, base_size);
    assert_loads_like_the_base(c, base_size, 0, 0);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_base_file_is_what_the_format_says),
        cmocka_unit_test(test_every_truncation_is_corrupt),
        cmocka_unit_test(test_every_flipped_byte_is_refused),
        cmocka_unit_test(test_trailing_bytes_are_corrupt),
        cmocka_unit_test(test_wrong_magic_is_corrupt),
        cmocka_unit_test(test_a_newer_version_is_refused_with_version),
        cmocka_unit_test(test_the_flags_field_is_ignored),
        cmocka_unit_test(test_impossible_contents_with_a_correct_checksum_are_corrupt),
        cmocka_unit_test(test_impossible_sizes_allocate_nothing_big),
        cmocka_unit_test(test_more_layer_sizes_than_allowed_are_corrupt),
        cmocka_unit_test(test_non_finite_parameters_are_corrupt),
        cmocka_unit_test(test_non_finite_losses_in_the_history_load),
        cmocka_unit_test(test_repeated_sections_are_corrupt),
        cmocka_unit_test(test_a_repeated_metadata_key_is_corrupt),
        cmocka_unit_test(test_unknown_sections_are_skipped),
    };
    return cmocka_run_group_tests(tests, setup_base, teardown_base);
}
