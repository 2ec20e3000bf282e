/*
 * Byte-level helpers for the model-file tests (docs/model-format.md): little-endian
 * fields, sections, the END section's CRC, and loads that must fail. Shared by
 * test_model_file_corrupt.c and test_model_file_trainer.c.
 */
#ifndef MODEL_FILE_BYTES_H
#define MODEL_FILE_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include <nn/nn.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#define HEADER 20u   /* magic, version, flags */
#define SECTION 16u  /* tag, reserved, length */
#define END_SIZE 20u /* the END section: header + CRC */

uint32_t crc32_of(const unsigned char *p, size_t n);
uint32_t get_u32(const unsigned char *p);
uint64_t get_u64(const unsigned char *p);
double get_f64(const unsigned char *p);
void put_u32(unsigned char *p, uint32_t v);
void put_u64(unsigned char *p, uint64_t v);
void put_f64(unsigned char *p, double v);
uint32_t tag_of(const char *s);

/* Recomputes the END section's CRC (the file must end with an END section). */
void fix_crc(unsigned char *buf, size_t size);
/* Offset of the first section tagged `tag` (its header), or (size_t)-1 if there is none. */
size_t section_or_none(const unsigned char *buf, size_t size, const char *tag);
/* The same; asserts it exists. */
size_t find_section(const unsigned char *buf, size_t size, const char *tag);
/* Offset of that section's payload. */
size_t payload_of(const unsigned char *buf, size_t size, const char *tag);

/* A heap copy of n bytes (at least one byte allocated). */
unsigned char *copy_of(const unsigned char *p, size_t n);
/* A copy of `buf` with `n` bytes of `ins` inserted at `at` (size in *out_size). */
unsigned char *with_inserted(const unsigned char *buf, size_t size, size_t at, const unsigned char *ins, size_t n,
                             size_t *out_size);

/* Loads from an exactly sized heap copy, so that a read past the end is a sanitizer error. */
nn_status load_copy(const unsigned char *buf, size_t size, nn_model **out);
/* Asserts the load fails with want1 or want2, a fresh message and *out NULL. */
void expect_fails(nn_status want1, nn_status want2, const unsigned char *buf, size_t size, const char *what);
void expect_corrupt(const unsigned char *buf, size_t size, const char *what);

#endif /* MODEL_FILE_BYTES_H */
