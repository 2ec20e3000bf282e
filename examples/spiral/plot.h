/*
 * The spiral example's two pictures, drawn with Cairo to look like the book's
 * matplotlib figures (640×480 pixels, the default axes box, DejaVu Sans, the
 * default colour cycle and viridis regions).
 */
#ifndef SPIRAL_PLOT_H
#define SPIRAL_PLOT_H

#include <stddef.h>
#include <stdint.h>

/* Draws `values[0..n)` against their index as one line labelled `label`, with axes,
 * ticks and axis labels, and writes it to `path` as PNG.
 * Returns NULL on success, else a static message. */
const char *plot_line_png(const char *path, const double *values, size_t n,
                          const char *label, const char *x_label, const char *y_label);

/* A grid of predicted classes: value (x_min + c·step, y_min + r·step) has its class at
 * classes[r·cols + c], i.e. rows go up the y axis as in NumPy's meshgrid. */
typedef struct plot_class_grid {
    const int32_t *classes; /* (rows, cols) */
    size_t cols;
    size_t rows;
    double x_min;
    double y_min;
    double step;
} plot_class_grid;

/* Fills each grid cell with its class's colour, overlays `n_points` points
 * (`points` is (n_points, 2), `labels` their classes; markers o, x, ^ for classes
 * 0, 1, 2, cycling after that), draws axes, and writes the PNG to `path`.
 * Returns NULL on success, else a static message. */
const char *plot_decision_boundary_png(const char *path, const plot_class_grid *grid,
                                       const double *points, const int32_t *labels,
                                       size_t n_points);

#endif /* SPIRAL_PLOT_H */
