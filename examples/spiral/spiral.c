/*
 * The book's chapter-1 `train.py` through libnn's C API: the spiral data set, a
 * 2-10-3 sigmoid/softmax net, 300 epochs of SGD (batch 30, lr 1.0) with the Trainer's
 * loss reports, the final accuracy, and two pictures: loss.png and
 * decision_boundary.png.
 *
 * One random stream seeded with 1984 feeds the data set, the initial weights and the
 * shuffle, as the book's global NumPy stream does, so in float64 the printed losses
 * are the book's.
 *
 * While it trains, a progress bar on stderr (when stderr is a terminal, or with
 * --progress) follows nn_fit's progress callback; Ctrl-C stops the training cleanly
 * through the same callback, and the program goes on with the model as it was after
 * the last completed step. stdout carries only the book's lines.
 *
 *   spiral [--dtype float32|float64] [--device auto|cpu|cuda|reference] [--out-dir DIR]
 *          [--no-plot] [--progress|--no-progress] [--optimizer NAME] [--lr RATE]
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200112L /* isatty, fileno */
#endif

#include <nn/nn.h>

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#include <io.h>
#define isatty _isatty
#define fileno _fileno
#else
#include <unistd.h>
#endif

#include "plot.h"

enum {
    POINTS_PER_CLASS = 100,
    N_CLASSES = 3,
    N_ROWS = POINTS_PER_CLASS * N_CLASSES,
    N_INPUTS = 2,
    N_HIDDEN = 10
};

/* The book plots the boundary with h = 0.001 (4.3 M points); 0.005 draws the same
 * picture at this figure's resolution in a fraction of the time. */
static const double grid_step = 0.005;

/* --optimizer: the book's common/optimizer.py classes. SGD keeps train.py's lr 1.0;
 * the others get a rate that trains this net in 300 epochs (the same as bench/spiral's),
 * and the book's defaults for everything else. */
static const struct spiral_optimizer {
    const char *name;
    nn_optimizer kind;
    double learning_rate;
} optimizers[] = {
    {"sgd", NN_OPTIMIZER_SGD, 1.0},          {"momentum", NN_OPTIMIZER_MOMENTUM, 0.1},
    {"nesterov", NN_OPTIMIZER_NESTEROV, 0.1}, {"adagrad", NN_OPTIMIZER_ADAGRAD, 0.5},
    {"rmsprop", NN_OPTIMIZER_RMSPROP, 0.01},  {"adam", NN_OPTIMIZER_ADAM, 0.02},
};

typedef struct options {
    nn_dtype dtype;
    nn_device_kind device;
    const char *out_dir;
    int plot;     /* 0 with --no-plot: train and predict the grid, write no picture */
    int progress; /* -1: a bar when stderr is a terminal; 0: none; 1: a bar */
    const struct spiral_optimizer *optimizer;
    double learning_rate; /* 0: the optimizer's own */
} options;

static void usage(FILE *to)
{
    fprintf(to, "usage: spiral [--dtype float32|float64] [--device auto|cpu|cuda|reference]"
                " [--out-dir DIR] [--no-plot]\n"
                "              [--progress|--no-progress]"
                " [--optimizer sgd|momentum|nesterov|adagrad|rmsprop|adam] [--lr RATE]\n"
                "  the book's ch01 train.py: defaults float64, auto (best available device), out-dir .,\n"
                "  SGD with lr 1.0, a progress bar on stderr when it is a terminal (Ctrl-C stops\n"
                "  the training and keeps what was trained)\n");
}

/* Returns 0 and fills `opt`, or 1 after printing why not. */
static int parse_args(int argc, char **argv, options *opt)
{
    opt->dtype = NN_DTYPE_FLOAT64; /* the book trains in float64 */
    opt->device = NN_DEVICE_AUTO;
    opt->out_dir = ".";
    opt->plot = 1;
    opt->progress = -1;
    opt->optimizer = &optimizers[0];
    opt->learning_rate = 0.0;
    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(arg, "--no-plot") == 0) {
            opt->plot = 0;
            continue;
        }
        if (strcmp(arg, "--progress") == 0 || strcmp(arg, "--no-progress") == 0) {
            opt->progress = strcmp(arg, "--progress") == 0;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "spiral: unknown argument or missing value: %s\n", arg);
            usage(stderr);
            return 1;
        }
        const char *value = argv[++i];
        if (strcmp(arg, "--dtype") == 0) {
            if (strcmp(value, "float32") == 0)
                opt->dtype = NN_DTYPE_FLOAT32;
            else if (strcmp(value, "float64") == 0)
                opt->dtype = NN_DTYPE_FLOAT64;
            else {
                fprintf(stderr, "spiral: --dtype must be float32 or float64, not %s\n", value);
                return 1;
            }
        } else if (strcmp(arg, "--device") == 0) {
            if (strcmp(value, "auto") == 0)
                opt->device = NN_DEVICE_AUTO;
            else if (strcmp(value, "cpu") == 0)
                opt->device = NN_DEVICE_CPU;
            else if (strcmp(value, "cuda") == 0)
                opt->device = NN_DEVICE_CUDA;
            else if (strcmp(value, "reference") == 0)
                opt->device = NN_DEVICE_REFERENCE;
            else {
                fprintf(stderr, "spiral: --device must be auto, cpu, cuda or reference, not %s\n",
                        value);
                return 1;
            }
        } else if (strcmp(arg, "--out-dir") == 0) {
            opt->out_dir = value;
        } else if (strcmp(arg, "--optimizer") == 0) {
            size_t k = 0;
            const size_t n = sizeof optimizers / sizeof optimizers[0];
            while (k < n && strcmp(optimizers[k].name, value) != 0)
                ++k;
            if (k == n) {
                fprintf(stderr, "spiral: --optimizer must be sgd, momentum, nesterov, adagrad,"
                                " rmsprop or adam, not %s\n", value);
                return 1;
            }
            opt->optimizer = &optimizers[k];
        } else if (strcmp(arg, "--lr") == 0) {
            char *end = NULL;
            opt->learning_rate = strtod(value, &end);
            if (end == value || *end != '\0' || !(opt->learning_rate > 0.0) ||
                !isfinite(opt->learning_rate)) {
                fprintf(stderr, "spiral: --lr must be a finite number above 0, not %s\n", value);
                return 1;
            }
        } else {
            fprintf(stderr, "spiral: unknown argument: %s\n", arg);
            usage(stderr);
            return 1;
        }
    }
    return 0;
}

/* ---- progress bar and Ctrl-C, through nn_fit's progress callback ---- */

static volatile sig_atomic_t interrupted = 0;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct progress_bar {
    FILE *to;             /* NULL: draw nothing (the callback still watches Ctrl-C) */
    uint64_t first_epoch; /* epochs already trained before this fit (0 here) */
    uint64_t epochs;      /* epochs of this fit */
    int drawn;            /* filled cells last drawn, -1 before the first draw */
    uint64_t last_epoch;  /* the last epoch that ended */
} progress_bar;

enum { BAR_CELLS = 30 };

/* Called by nn_fit at every loss record and at the end of every epoch. Returning
 * non-zero stops the fit at this step boundary with NN_ERR_CANCELLED. */
static int on_progress(const nn_progress *p, void *user)
{
    progress_bar *bar = user;
    if (p->event == NN_PROGRESS_EPOCH_END)
        bar->last_epoch = p->epoch;
    if (bar->to != NULL && p->event == NN_PROGRESS_EPOCH_END) {
        uint64_t done = p->epoch - bar->first_epoch;
        int cells = (int)(done * BAR_CELLS / bar->epochs);
        /* Redraw when a cell fills, every 10 epochs for the numbers, and on the way out. */
        if (cells != bar->drawn || done % 10 == 0 || done == bar->epochs || interrupted) {
            char fill[BAR_CELLS + 1];
            for (int i = 0; i < BAR_CELLS; ++i)
                fill[i] = i < cells ? '#' : '.';
            fill[BAR_CELLS] = '\0';
            fprintf(bar->to, "\r[%s] epoch %3" PRIu64 " / %" PRIu64 " | loss %.4f | %.2f s", fill,
                    done, bar->epochs, p->loss, p->elapsed_seconds);
            fflush(bar->to);
            bar->drawn = cells;
        }
    }
    return interrupted != 0;
}

/* Prints what failed and libnn's detail; returns 1 (the process exit status). */
static int fail(const char *what, nn_status status)
{
    fprintf(stderr, "spiral: %s failed: %s: %s\n", what, nn_status_string(status),
            nn_last_error_message());
    return 1;
}

#define CHECK(call)                               \
    do {                                          \
        nn_status status_ = (call);               \
        if (status_ != NN_OK) {                   \
            exit_code = fail(#call, status_);     \
            goto done;                            \
        }                                         \
    } while (0)

#define CHECK_ALLOC(ptr)                                       \
    do {                                                       \
        if ((ptr) == NULL) {                                   \
            fprintf(stderr, "spiral: out of memory\n");        \
            exit_code = 1;                                     \
            goto done;                                         \
        }                                                      \
    } while (0)

/* `dir`/`name` into `buf`; returns 0, or 1 if it does not fit. */
static int join_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap;
}

/* Number of points of NumPy's arange(lo, hi, step). */
static size_t arange_count(double lo, double hi, double step)
{
    return (size_t)ceil((hi - lo) / step);
}

int main(int argc, char **argv)
{
    options opt;
    if (parse_args(argc, argv, &opt) != 0)
        return 1;

    int exit_code = 0;
    nn_rng *rng = NULL;
    nn_model *model = NULL;
    nn_loss_record *records = NULL;
    double *losses = NULL;
    double *grid_x = NULL;
    int32_t *grid_classes = NULL;
    static double x[N_ROWS * N_INPUTS]; /* (300, 2) */
    static int32_t t[N_ROWS];           /* (300,) class indices */
    char path[4096];

    /* Data: the book's load_data(seed=1984), from a stream that continues below. */
    CHECK(nn_rng_create(&rng, 1984));
    CHECK(nn_dataset_spiral(x, N_ROWS * N_INPUTS, t, N_ROWS, POINTS_PER_CLASS, N_CLASSES, rng, 0));

    /* Model: TwoLayerNet(2, 10, 3), weights 0.01·randn drawn from the same stream. */
    const size_t sizes[] = {N_INPUTS, N_HIDDEN, N_CLASSES};
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = sizeof sizes / sizeof sizes[0];
    desc.layer_sizes = sizes;
    desc.hidden_activation = NN_ACTIVATION_SIGMOID;
    desc.loss = NN_LOSS_SOFTMAX_CROSS_ENTROPY;
    desc.dtype = opt.dtype;
    desc.rng = rng;
    CHECK(nn_create(&model, &desc));
    CHECK(nn_set_device(model, opt.device, 0));

    /* Trainer(model, SGD(lr=1.0)).fit(x, t, 300, 30, eval_interval=10) */
    nn_fit_options fit;
    nn_fit_options_init(&fit);
    fit.epochs = 300;
    fit.batch_size = 30;
    fit.optimizer = opt.optimizer->kind;
    fit.learning_rate = opt.learning_rate > 0.0 ? opt.learning_rate : opt.optimizer->learning_rate;
    fit.report_interval = 10;
    fit.rng = rng;
    progress_bar bar = {NULL, 0, 300, -1, 0};
    if (opt.progress == 1 || (opt.progress == -1 && isatty(fileno(stderr))))
        bar.to = stderr;
    fit.progress = on_progress;
    fit.progress_user = &bar;
    void (*previous_sigint)(int) = signal(SIGINT, on_sigint);
    nn_status fit_status = nn_fit(model, x, NN_DTYPE_FLOAT64, N_ROWS, N_INPUTS, t,
                                  NN_TARGET_CLASS_INDEX, 1, &fit, NULL);
    if (previous_sigint != SIG_ERR)
        signal(SIGINT, previous_sigint);
    if (bar.to != NULL && bar.drawn >= 0)
        fputc('\n', bar.to);
    if (fit_status == NN_ERR_CANCELLED)
        /* The model holds the weights of the last completed step: go on with them. */
        fprintf(stderr, "spiral: interrupted after %" PRIu64 " of 300 epochs; using the model as"
                        " trained so far\n", bar.last_epoch);
    else
        CHECK(fit_status);

    size_t n_records = 0;
    CHECK(nn_get_loss_history(model, NULL, 0, &n_records));
    records = malloc((n_records ? n_records : 1) * sizeof *records);
    losses = malloc((n_records ? n_records : 1) * sizeof *losses);
    CHECK_ALLOC(records);
    CHECK_ALLOC(losses);
    CHECK(nn_get_loss_history(model, records, n_records, &n_records));
    for (size_t i = 0; i < n_records; ++i) {
        printf("| epoch %" PRIu64 " |  iter %" PRIu64 " / %" PRIu64 " | loss %.2f\n",
               records[i].epoch, records[i].iteration, records[i].steps_per_epoch,
               records[i].loss);
        losses[i] = records[i].loss;
    }

    double accuracy = 0.0;
    CHECK(nn_evaluate(model, x, NN_DTYPE_FLOAT64, N_ROWS, N_INPUTS, t, NN_TARGET_CLASS_INDEX, 1,
                      NULL, &accuracy));
    nn_device_info device;
    nn_device_info_init(&device);
    CHECK(nn_get_device(model, &device));
    printf("accuracy %.2f (%d/%d)\n", accuracy, (int)lround(accuracy * N_ROWS), N_ROWS);
    printf("dtype %s\n", opt.dtype == NN_DTYPE_FLOAT64 ? "float64" : "float32");
    printf("device %s\n", device.name);
    if (fit.optimizer != NN_OPTIMIZER_SGD || fit.learning_rate != 1.0)
        printf("optimizer %s, lr %g\n", opt.optimizer->name, fit.learning_rate);

    /* The loss curve, as Trainer.plot(). */
    if (join_path(path, sizeof path, opt.out_dir, "loss.png")) {
        fprintf(stderr, "spiral: output directory name too long\n");
        exit_code = 1;
        goto done;
    }
    if (opt.plot && n_records > 0) {
        const char *err = plot_line_png(path, losses, n_records, "train", "iterations (x10)", "loss");
        if (err != NULL) {
            fprintf(stderr, "spiral: writing %s failed: %s\n", path, err);
            exit_code = 1;
            goto done;
        }
    }

    /* The decision boundary: predicted classes over the data's extent ± 0.1. */
    double lo0 = x[0], hi0 = x[0], lo1 = x[1], hi1 = x[1];
    for (size_t i = 1; i < N_ROWS; ++i) {
        lo0 = fmin(lo0, x[2 * i]);
        hi0 = fmax(hi0, x[2 * i]);
        lo1 = fmin(lo1, x[2 * i + 1]);
        hi1 = fmax(hi1, x[2 * i + 1]);
    }
    plot_class_grid grid;
    grid.x_min = lo0 - 0.1;
    grid.y_min = lo1 - 0.1;
    grid.step = grid_step;
    grid.cols = arange_count(grid.x_min, hi0 + 0.1, grid_step);
    grid.rows = arange_count(grid.y_min, hi1 + 0.1, grid_step);
    size_t n_grid = grid.cols * grid.rows;
    grid_x = malloc(n_grid * N_INPUTS * sizeof *grid_x);
    grid_classes = malloc(n_grid * sizeof *grid_classes);
    CHECK_ALLOC(grid_x);
    CHECK_ALLOC(grid_classes);
    for (size_t r = 0; r < grid.rows; ++r)
        for (size_t c = 0; c < grid.cols; ++c) {
            grid_x[2 * (r * grid.cols + c)] = grid.x_min + (double)c * grid_step;
            grid_x[2 * (r * grid.cols + c) + 1] = grid.y_min + (double)r * grid_step;
        }
    CHECK(nn_predict_classes(model, grid_x, NN_DTYPE_FLOAT64, n_grid, N_INPUTS, grid_classes,
                             n_grid));
    grid.classes = grid_classes;
    if (join_path(path, sizeof path, opt.out_dir, "decision_boundary.png")) {
        fprintf(stderr, "spiral: output directory name too long\n");
        exit_code = 1;
        goto done;
    }
    const char *err = opt.plot ? plot_decision_boundary_png(path, &grid, x, t, N_ROWS) : NULL;
    if (err != NULL) {
        fprintf(stderr, "spiral: writing %s failed: %s\n", path, err);
        exit_code = 1;
        goto done;
    }

done:
    free(grid_classes);
    free(grid_x);
    free(losses);
    free(records);
    nn_destroy(model);
    nn_rng_destroy(rng);
    return exit_code;
}
