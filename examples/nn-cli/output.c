#define _POSIX_C_SOURCE 200809L /* isatty, fileno, clock_gettime */

#include "output.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int report_nn_error(const char *what, nn_status status)
{
    fprintf(stderr, "nn-cli: %s failed: %s: %s\n", what, nn_status_string(status),
            nn_last_error_message());
    return 1;
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_begin(progress *p, size_t epochs)
{
    p->tty = isatty(fileno(stdout));
    p->epochs = epochs;
    p->started = now_seconds();
}

void progress_epoch(progress *p, size_t epoch, double loss)
{
    if (!p->tty) {
        printf("epoch %zu/%zu loss %.6g\n", epoch, p->epochs, loss);
        return;
    }
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    size_t filled = (size_t)((double)WIDTH * (double)epoch / (double)p->epochs);
    for (size_t i = 0; i < WIDTH; ++i)
        bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    /* \r rewrites the line; trailing spaces wipe a longer previous one. */
    printf("\r[%s] epoch %zu/%zu  loss %.6g  %.1f s   ", bar, epoch, p->epochs, loss,
           now_seconds() - p->started);
    fflush(stdout);
}

double progress_end(progress *p)
{
    if (p->tty)
        putchar('\n');
    fflush(stdout);
    return now_seconds() - p->started;
}

int write_predictions(const char *path, FILE *to, const cli_meta *meta, const int32_t *classes,
                      const double *values, size_t rows, int digits)
{
    FILE *f = to;
    if (path) {
        f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "nn-cli: %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    csv_write_field(meta->label, f);
    fputc('\n', f);
    for (size_t r = 0; r < rows; ++r) {
        if (meta->task == CLI_CLASSIFY)
            csv_write_field(meta->classes[classes[r]], f);
        else
            fprintf(f, "%.*g", digits, values[r]);
        fputc('\n', f);
    }
    int failed = fflush(f) != 0 || ferror(f);
    int err = errno;
    if (path && fclose(f) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (failed) {
        fprintf(stderr, "nn-cli: %s: %s\n", path ? path : "standard output", strerror(err));
        return 1;
    }
    return 0;
}
