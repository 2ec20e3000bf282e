#define _XOPEN_SOURCE 700
#include "model_file_bytes.h"

#include "capi_test_util.h"

#include <stdlib.h>
#include <string.h>

uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;
    for (i = 0; i < n; ++i) {
        c ^= p[i];
        for (k = 0; k < 8; ++k) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

double get_f64(const unsigned char *p)
{
    uint64_t b = get_u64(p);
    double v;
    memcpy(&v, &b, 8);
    return v;
}

void put_u32(unsigned char *p, uint32_t v)
{
    int i;
    for (i = 0; i < 4; ++i) p[i] = (unsigned char)(v >> (8 * i));
}

void put_u64(unsigned char *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; ++i) p[i] = (unsigned char)(v >> (8 * i));
}

void put_f64(unsigned char *p, double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    put_u64(p, b);
}

uint32_t tag_of(const char *s)
{
    return get_u32((const unsigned char *)s);
}

void fix_crc(unsigned char *buf, size_t size)
{
    put_u32(buf + size - 4, crc32_of(buf, size - END_SIZE));
}

size_t section_or_none(const unsigned char *buf, size_t size, const char *tag)
{
    size_t at = HEADER;
    while (at + SECTION <= size) {
        if (get_u32(buf + at) == tag_of(tag)) return at;
        at += SECTION + (size_t)get_u64(buf + at + 8);
    }
    return (size_t)-1;
}

size_t find_section(const unsigned char *buf, size_t size, const char *tag)
{
    const size_t at = section_or_none(buf, size, tag);
    if (at == (size_t)-1) fail_msg("no section %s", tag);
    return at;
}

size_t payload_of(const unsigned char *buf, size_t size, const char *tag)
{
    return find_section(buf, size, tag) + SECTION;
}

unsigned char *copy_of(const unsigned char *p, size_t n)
{
    unsigned char *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n) memcpy(c, p, n);
    return c;
}

unsigned char *with_inserted(const unsigned char *buf, size_t size, size_t at,
                                    const unsigned char *ins, size_t n, size_t *out_size)
{
    unsigned char *c = malloc(size + n);
    assert_non_null(c);
    memcpy(c, buf, at);
    memcpy(c + at, ins, n);
    memcpy(c + at + n, buf + at, size - at);
    *out_size = size + n;
    return c;
}

nn_status load_copy(const unsigned char *buf, size_t size, nn_model **out)
{
    unsigned char *c = copy_of(buf, size);
    nn_status s;
    *out = capi_sentinel_model();
    s = nn_load_from_buffer(out, c, size);
    free(c);
    return s;
}

void expect_fails(nn_status want1, nn_status want2, const unsigned char *buf, size_t size,
                         const char *what)
{
    nn_model *out = capi_sentinel_model();
    nn_status s = load_copy(buf, size, &out);
    if (s == NN_OK) { /* fail here, without leaking the model CAPI_FAIL2 would load */
        nn_destroy(out);
        fail_msg("%s: loaded (NN_OK), expected %s", what, nn_status_string(want1));
    }
    if (s != want1 && s != want2)
        print_error("%s: got %d (%s), expected %s\n", what, (int)s, nn_status_string(s),
                    nn_status_string(want1));
    CAPI_FAIL2(want1, want2, load_copy(buf, size, &out));
    assert_null(out);
}

void expect_corrupt(const unsigned char *buf, size_t size, const char *what)
{
    expect_fails(NN_ERR_CORRUPT, NN_ERR_CORRUPT, buf, size, what);
}
