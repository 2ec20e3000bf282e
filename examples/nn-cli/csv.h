/*
 * CSV reading for nn-cli: a header row, then data rows of the same width.
 *
 * Fields are separated by commas; a field may be double-quoted ("a,b" and "say ""hi""")
 * and then may span lines. Unquoted fields are trimmed of spaces and tabs; CRLF line
 * ends, a UTF-8 byte-order mark and blank lines are accepted. Every row remembers the
 * line of the file it starts on, so later checks (a non-numeric cell) can name it.
 */
#ifndef NN_CLI_CSV_H
#define NN_CLI_CSV_H

#include <stddef.h>
#include <stdio.h>

typedef struct csv_table {
    const char *path;    /* as given; used in messages */
    size_t n_cols;       /* fields in the header, and in every row */
    size_t n_rows;       /* data rows, the header not counted */
    char **header;       /* (n_cols) column names */
    char **cells;        /* (n_rows, n_cols) row-major; cell (r, c) at r*n_cols + c */
    size_t header_line;  /* 1-based line of the header */
    size_t *row_line;    /* (n_rows) 1-based line each data row starts on */
    char *text_;         /* the file's bytes, unescaped in place; cells point into it */
    char **fields_;      /* header and cells in one allocation */
} csv_table;

/* Reads `path` into `out`. Returns 0; 1 if the file cannot be read (the OS reason is
 * printed); 2 if it is not a usable CSV — empty, a header only, ragged rows, an
 * unterminated quote — after printing a message naming the line. */
int csv_read(const char *path, csv_table *out);

void csv_free(csv_table *table);

/* The cell at (row, col). */
const char *csv_cell(const csv_table *table, size_t row, size_t col);

/* Index of the column named `name`, or -1. */
long csv_find_column(const csv_table *table, const char *name);

/* Converts cell (row, col) to a finite double. Returns 0, or 2 after printing
 * "PATH: line L, column C ('name'): 'text' is not a number". */
int csv_number(const csv_table *table, size_t row, size_t col, double *out);

/* Parses a finite number with optional surrounding spaces; returns 0 on success. */
int csv_parse_double(const char *text, double *out);

/* Writes the header and table rows `rows` (n of them) to a new CSV file at `path`.
 * Returns 0, or 1 after the OS reason. */
int csv_write_rows(const csv_table *table, const size_t *rows, size_t n, const char *path);

/* Writes `text` as one CSV field, quoted when it has to be. */
void csv_write_field(const char *text, FILE *file);

#endif /* NN_CLI_CSV_H */
