/*
 * CSV reading: the whole file is read into one buffer and split in place, so a cell is a
 * pointer into the file's own bytes (quotes removed, NUL-terminated) and a table costs
 * one pointer per cell beyond the file itself.
 */
#include "csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the whole file; returns NULL after printing the OS reason. */
static char *read_file(const char *path, size_t *out_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nn-cli: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, size = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size += fread(buf + size, 1, cap - size, f);
        if (size < cap)
            break;
        char *bigger = realloc(buf, 2 * cap + 1);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (!buf) {
        fprintf(stderr, "nn-cli: %s: out of memory reading the file\n", path);
    } else if (ferror(f)) {
        fprintf(stderr, "nn-cli: %s: %s\n", path, strerror(errno));
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[size] = '\0';
        *out_size = size;
    }
    return buf;
}

/* A growable array of pointers (fields) or of sizes (per-record bookkeeping). */
typedef struct grow {
    void *data;
    size_t n, cap, elem;
} grow;

static int grow_push(grow *g, const void *value)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 256;
        void *data = realloc(g->data, cap * g->elem);
        if (!data)
            return 1;
        g->data = data;
        g->cap = cap;
    }
    memcpy((char *)g->data + g->n * g->elem, value, g->elem);
    g->n++;
    return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Splits `text` (NUL-terminated, `size` bytes) into fields, in place. Records of one
 * empty unquoted field (blank lines) are dropped. Returns 0, or 2 after a message. */
static int split(const char *path, char *text, size_t size, grow *fields, grow *rec_start,
                 grow *rec_line)
{
    char *p = text, *end = text + size;
    size_t line = 1;
    if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        size_t first = fields->n, start_line = line;
        int quoted_any = 0;
        for (;;) { /* one field per pass */
            while (p < end && is_blank(*p))
                ++p;
            char *value = p, delim;
            if (p < end && *p == '"') {
                char *w = p++;
                size_t quote_line = line;
                value = w;
                quoted_any = 1;
                for (;;) {
                    if (p >= end) {
                        fprintf(stderr, "nn-cli: %s: line %zu: a quoted field is never closed\n",
                                path, quote_line);
                        return 2;
                    }
                    if (*p == '"') {
                        if (p + 1 < end && p[1] == '"') {
                            *w++ = '"';
                            p += 2;
                            continue;
                        }
                        ++p;
                        break;
                    }
                    if (*p == '\n')
                        ++line;
                    *w++ = *p++;
                }
                while (p < end && (is_blank(*p) || *p == '\r'))
                    ++p;
                if (p < end && *p != ',' && *p != '\n') {
                    fprintf(stderr, "nn-cli: %s: line %zu: text after a closing quote\n", path, line);
                    return 2;
                }
                delim = p < end ? *p : '\0';
                *w = '\0';
            } else {
                while (p < end && *p != ',' && *p != '\n')
                    ++p;
                delim = p < end ? *p : '\0';
                char *q = p;
                while (q > value && (is_blank(q[-1]) || q[-1] == '\r'))
                    --q;
                *q = '\0';
            }
            if (grow_push(fields, &value))
                goto oom;
            if (p < end)
                ++p; /* past the delimiter */
            if (delim != ',') {
                if (delim == '\n')
                    ++line;
                break;
            }
        }
        char *only = ((char **)fields->data)[first];
        if (fields->n - first == 1 && !quoted_any && only[0] == '\0') {
            fields->n = first; /* a blank line */
            continue;
        }
        if (grow_push(rec_start, &first) || grow_push(rec_line, &start_line))
            goto oom;
    }
    return 0;
oom:
    fprintf(stderr, "nn-cli: %s: out of memory splitting the file\n", path);
    return 2;
}

int csv_read(const char *path, csv_table *out)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    size_t size = 0;
    char *text = read_file(path, &size);
    if (!text)
        return 1;
    const char *nul = memchr(text, '\0', size);
    if (nul) {
        size_t line = 1;
        for (const char *c = text; c < nul; ++c)
            line += *c == '\n';
        fprintf(stderr, "nn-cli: %s: line %zu: a NUL byte; this is not a text CSV file\n", path,
                line);
        free(text);
        return 2;
    }
    grow fields = {NULL, 0, 0, sizeof(char *)};
    grow rec_start = {NULL, 0, 0, sizeof(size_t)};
    grow rec_line = {NULL, 0, 0, sizeof(size_t)};
    int rc = split(path, text, size, &fields, &rec_start, &rec_line);
    size_t n_rec = rec_start.n;
    const size_t *starts = rec_start.data, *lines = rec_line.data;
    if (rc == 0 && n_rec == 0) {
        fprintf(stderr, "nn-cli: %s: line 1: the file is empty; a header row is expected\n", path);
        rc = 2;
    }
    if (rc == 0 && n_rec == 1) {
        fprintf(stderr, "nn-cli: %s: line %zu: no data rows after the header (line %zu)\n", path,
                lines[0] + 1, lines[0]);
        rc = 2;
    }
    size_t n_cols = rc == 0 ? (n_rec > 1 ? starts[1] : fields.n) - starts[0] : 0;
    for (size_t r = 1; rc == 0 && r < n_rec; ++r) {
        size_t next = r + 1 < n_rec ? starts[r + 1] : fields.n;
        size_t width = next - starts[r];
        if (width != n_cols) {
            fprintf(stderr, "nn-cli: %s: line %zu: %zu field%s, but the header (line %zu) has %zu\n",
                    path, lines[r], width, width == 1 ? "" : "s", lines[0], n_cols);
            rc = 2;
        }
    }
    if (rc == 0) {
        out->n_cols = n_cols;
        out->n_rows = n_rec - 1;
        out->text_ = text;
        out->fields_ = fields.data;
        out->header = out->fields_;
        out->cells = out->fields_ + n_cols;
        out->header_line = lines[0];
        out->row_line = malloc(out->n_rows * sizeof *out->row_line);
        if (!out->row_line) {
            fprintf(stderr, "nn-cli: %s: out of memory\n", path);
            rc = 2;
        } else {
            memcpy(out->row_line, lines + 1, out->n_rows * sizeof *out->row_line);
        }
    }
    free(rec_start.data);
    free(rec_line.data);
    if (rc != 0) {
        free(fields.data);
        free(text);
        free(out->row_line);
        memset(out, 0, sizeof *out);
        out->path = path;
    }
    return rc;
}

void csv_free(csv_table *table)
{
    if (!table)
        return;
    free(table->text_);
    free(table->fields_);
    free(table->row_line);
    memset(table, 0, sizeof *table);
}

const char *csv_cell(const csv_table *table, size_t row, size_t col)
{
    return table->cells[row * table->n_cols + col];
}

long csv_find_column(const csv_table *table, const char *name)
{
    for (size_t c = 0; c < table->n_cols; ++c)
        if (strcmp(table->header[c], name) == 0)
            return (long)c;
    return -1;
}

int csv_parse_double(const char *text, double *out)
{
    char *rest = NULL;
    errno = 0;
    double v = strtod(text, &rest);
    if (rest == text)
        return 1;
    while (is_blank(*rest))
        ++rest;
    if (*rest != '\0' || !isfinite(v))
        return 1;
    *out = v;
    return 0;
}

int csv_number(const csv_table *table, size_t row, size_t col, double *out)
{
    const char *text = csv_cell(table, row, col);
    if (csv_parse_double(text, out) == 0)
        return 0;
    const char *why = text[0] == '\0' ? "an empty cell is not a number" : "is not a finite number";
    fprintf(stderr, "nn-cli: %s: line %zu, column %zu ('%s'): ", table->path, table->row_line[row],
            col + 1, table->header[col]);
    if (text[0] == '\0')
        fprintf(stderr, "%s\n", why);
    else
        fprintf(stderr, "'%s' %s\n", text, why);
    return 2;
}

void csv_write_field(const char *text, FILE *file)
{
    size_t n = strlen(text);
    int quote = n > 0 && (is_blank(text[0]) || is_blank(text[n - 1]));
    for (const char *c = text; *c && !quote; ++c)
        quote = *c == ',' || *c == '"' || *c == '\n' || *c == '\r';
    if (!quote) {
        fputs(text, file);
        return;
    }
    fputc('"', file);
    for (const char *c = text; *c; ++c) {
        if (*c == '"')
            fputc('"', file);
        fputc(*c, file);
    }
    fputc('"', file);
}

static void write_record(char *const *fields, size_t n, FILE *file)
{
    for (size_t c = 0; c < n; ++c) {
        if (c)
            fputc(',', file);
        csv_write_field(fields[c], file);
    }
    fputc('\n', file);
}

int csv_write_rows(const csv_table *table, const size_t *rows, size_t n, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "nn-cli: %s: %s\n", path, strerror(errno));
        return 1;
    }
    write_record(table->header, table->n_cols, f);
    for (size_t i = 0; i < n; ++i)
        write_record(table->cells + rows[i] * table->n_cols, table->n_cols, f);
    int failed = fflush(f) != 0 || ferror(f);
    int err = errno;
    if (fclose(f) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (failed)
        fprintf(stderr, "nn-cli: %s: %s\n", path, strerror(err));
    return failed;
}
