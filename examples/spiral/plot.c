/*
 * Cairo drawings that mimic matplotlib's defaults, so the example's PNGs can be put
 * beside the book's (shared/reference/book-ch01/ PNGs) and compared by eye.
 *
 * Geometry: a 640×480 figure at 100 dpi; the axes box spans 12.5 %–90 % of the width
 * and 11 %–88 % of the height (matplotlib's subplot defaults). Sizes given in points
 * in matplotlib are converted with 1 pt = 100/72 px.
 */
#include "plot.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIG_W 640
#define FIG_H 480
#define PT (100.0 / 72.0) /* pixels per point at 100 dpi */
#define PI 3.14159265358979323846

static const double ax_left = 0.125 * FIG_W;
static const double ax_right = 0.9 * FIG_W;
static const double ax_top = (1.0 - 0.88) * FIG_H;
static const double ax_bottom = (1.0 - 0.11) * FIG_H;

typedef struct rgb { double r, g, b; } rgb;

/* matplotlib's default colour cycle: C0 blue, C1 orange, C2 green, C3 red. */
static const rgb cycle[] = {
    {0x1f / 255.0, 0x77 / 255.0, 0xb4 / 255.0},
    {0xff / 255.0, 0x7f / 255.0, 0x0e / 255.0},
    {0x2c / 255.0, 0xa0 / 255.0, 0x2c / 255.0},
    {0xd6 / 255.0, 0x27 / 255.0, 0x28 / 255.0},
};
#define N_CYCLE (sizeof cycle / sizeof cycle[0])

/* Region colours of the book's contourf of three classes (viridis, sampled from
 * custom_loop_decision_boundary.png). */
static const uint32_t region_rgb[] = {0x48186a, 0x26828e, 0xd8e219};
#define N_REGION (sizeof region_rgb / sizeof region_rgb[0])

/* One axis: its view limits and its tick step. */
typedef struct axis {
    double lo, hi;
    double step;
} axis;

/* The smallest of 1, 2, 2.5, 5, 10 × 10^k that cuts `span` into at most `max_ticks`
 * intervals (the spirit of matplotlib's MaxNLocator). */
static double nice_step(double span, int max_ticks)
{
    static const double mantissas[] = {1.0, 2.0, 2.5, 5.0, 10.0};
    double raw = span / max_ticks;
    double mag = pow(10.0, floor(log10(raw)));
    for (size_t i = 0; i < sizeof mantissas / sizeof mantissas[0]; ++i)
        if (mantissas[i] * mag >= raw * (1.0 - 1e-9))
            return mantissas[i] * mag;
    return 10.0 * mag;
}

static axis make_axis(double lo, double hi, int max_ticks)
{
    axis a;
    if (!(hi > lo)) { /* a flat or empty range: widen it so the scale stays finite */
        lo -= 0.5;
        hi += 0.5;
    }
    a.lo = lo;
    a.hi = hi;
    a.step = nice_step(hi - lo, max_ticks);
    return a;
}

/* Data limits plus matplotlib's 5 % margin on each side. */
static axis make_axis_with_margin(double lo, double hi, int max_ticks)
{
    double pad = 0.05 * (hi - lo);
    return make_axis(lo - pad, hi + pad, max_ticks);
}

static double to_px_x(const axis *a, double x)
{
    return ax_left + (x - a->lo) / (a->hi - a->lo) * (ax_right - ax_left);
}

static double to_px_y(const axis *a, double y)
{
    return ax_bottom - (y - a->lo) / (a->hi - a->lo) * (ax_bottom - ax_top);
}

/* Tick label text with as many decimals as the step needs and a real minus sign. */
static void format_tick(char *buf, size_t cap, double value, double step)
{
    int decimals = 0;
    double s = step;
    while (decimals < 6 && fabs(s - floor(s + 0.5)) > 1e-9 * step) {
        s *= 10.0;
        ++decimals;
    }
    if (fabs(value) < 1e-9 * step)
        value = 0.0; /* never print "-0.0" */
    if (value < 0.0)
        snprintf(buf, cap, "\xe2\x88\x92%.*f", decimals, -value); /* U+2212 */
    else
        snprintf(buf, cap, "%.*f", decimals, value);
}

/* Draws `text` with its anchor point at (x, y): ax, ay in 0..1 pick the anchor
 * within the ink box horizontally and within the font's ascent..baseline vertically. */
static void draw_text(cairo_t *cr, const char *text, double x, double y, double ax, double ay)
{
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, text, &te);
    cairo_font_extents(cr, &fe);
    /* Digits and capitals reach about 0.73 em above the baseline in DejaVu Sans. */
    double cap = 0.73 * 10.0 * PT;
    (void)fe;
    cairo_move_to(cr, x - te.x_advance * ax, y + cap * (1.0 - ay));
    cairo_show_text(cr, text);
}

static void set_rgb(cairo_t *cr, rgb c)
{
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

/* The axes frame, outward ticks with labels, and the two axis labels. */
static void draw_axes(cairo_t *cr, const axis *xa, const axis *ya,
                      const char *x_label, const char *y_label)
{
    const double tick_len = 3.5 * PT, tick_pad = 3.5 * PT, label_pad = 4.0 * PT;
    char buf[64];
    double widest_y_label = 0.0;

    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 10.0 * PT);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.8 * PT);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);

    cairo_rectangle(cr, ax_left, ax_top, ax_right - ax_left, ax_bottom - ax_top);
    cairo_stroke(cr);

    for (double t = ceil(xa->lo / xa->step - 1e-9) * xa->step; t <= xa->hi + 1e-9 * xa->step;
         t += xa->step) {
        double px = to_px_x(xa, t);
        cairo_move_to(cr, px, ax_bottom);
        cairo_line_to(cr, px, ax_bottom + tick_len);
        cairo_stroke(cr);
        format_tick(buf, sizeof buf, t, xa->step);
        draw_text(cr, buf, px, ax_bottom + tick_len + tick_pad, 0.5, 0.0);
    }
    for (double t = ceil(ya->lo / ya->step - 1e-9) * ya->step; t <= ya->hi + 1e-9 * ya->step;
         t += ya->step) {
        cairo_text_extents_t te;
        double py = to_px_y(ya, t);
        cairo_move_to(cr, ax_left, py);
        cairo_line_to(cr, ax_left - tick_len, py);
        cairo_stroke(cr);
        format_tick(buf, sizeof buf, t, ya->step);
        cairo_text_extents(cr, buf, &te);
        if (te.x_advance > widest_y_label)
            widest_y_label = te.x_advance;
        draw_text(cr, buf, ax_left - tick_len - tick_pad, py, 1.0, 0.5);
    }

    /* x label under the tick labels; y label rotated, left of the widest tick label. */
    double cap = 0.73 * 10.0 * PT;
    draw_text(cr, x_label, 0.5 * (ax_left + ax_right),
              ax_bottom + tick_len + tick_pad + cap + label_pad, 0.5, 0.0);
    cairo_save(cr);
    cairo_translate(cr, ax_left - tick_len - tick_pad - widest_y_label - label_pad,
                    0.5 * (ax_top + ax_bottom));
    cairo_rotate(cr, -PI / 2.0);
    draw_text(cr, y_label, 0.0, 0.0, 0.5, 1.0);
    cairo_restore(cr);
}

static const char *finish(cairo_surface_t *surface, cairo_t *cr, const char *path)
{
    cairo_status_t st = cairo_status(cr);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_write_to_png(surface, path);
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    return st == CAIRO_STATUS_SUCCESS ? NULL : cairo_status_to_string(st);
}

static cairo_t *white_figure(cairo_surface_t **out_surface)
{
    *out_surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, FIG_W, FIG_H);
    cairo_t *cr = cairo_create(*out_surface);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    return cr;
}

static void clip_to_axes(cairo_t *cr)
{
    cairo_rectangle(cr, ax_left, ax_top, ax_right - ax_left, ax_bottom - ax_top);
    cairo_clip(cr);
}

const char *plot_line_png(const char *path, const double *values, size_t n,
                          const char *label, const char *x_label, const char *y_label)
{
    if (n == 0)
        return "nothing to plot";
    double lo = values[0], hi = values[0];
    for (size_t i = 1; i < n; ++i) {
        if (values[i] < lo) lo = values[i];
        if (values[i] > hi) hi = values[i];
    }
    axis xa = make_axis_with_margin(0.0, (double)(n - 1), 8);
    axis ya = make_axis_with_margin(lo, hi, 7);

    cairo_surface_t *surface;
    cairo_t *cr = white_figure(&surface);

    cairo_save(cr);
    clip_to_axes(cr);
    set_rgb(cr, cycle[0]);
    cairo_set_line_width(cr, 1.5 * PT);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_SQUARE);
    for (size_t i = 0; i < n; ++i) {
        double px = to_px_x(&xa, (double)i), py = to_px_y(&ya, values[i]);
        if (i == 0)
            cairo_move_to(cr, px, py);
        else
            cairo_line_to(cr, px, py);
    }
    cairo_stroke(cr);
    cairo_restore(cr);

    draw_axes(cr, &xa, &ya, x_label, y_label);

    /* A legend in the upper right corner: a line sample and the label. */
    cairo_text_extents_t te;
    cairo_text_extents(cr, label, &te);
    const double pad = 0.4 * 10.0 * PT, sample = 2.0 * 10.0 * PT, gap = 0.8 * 10.0 * PT;
    double box_h = 2.0 * pad + 10.0 * PT;
    double box_w = pad + sample + gap + te.x_advance + pad;
    double box_x = ax_right - 0.5 * 10.0 * PT - box_w, box_y = ax_top + 0.5 * 10.0 * PT;
    cairo_rectangle(cr, box_x, box_y, box_w, box_h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(cr, 0.8 * PT);
    cairo_stroke(cr);
    set_rgb(cr, cycle[0]);
    cairo_set_line_width(cr, 1.5 * PT);
    cairo_move_to(cr, box_x + pad, box_y + 0.5 * box_h);
    cairo_line_to(cr, box_x + pad + sample, box_y + 0.5 * box_h);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    draw_text(cr, label, box_x + pad + sample + gap, box_y + 0.5 * box_h, 0.0, 0.5);

    return finish(surface, cr, path);
}

/* Scatter markers of size s = 40 pt² (the book's), filled in the class colour with a
 * 1.5 pt edge of the same colour, as matplotlib's scatter draws them. */
static void draw_marker(cairo_t *cr, int shape, double x, double y)
{
    const double half = 0.5 * sqrt(40.0) * PT;
    cairo_set_line_width(cr, 1.5 * PT);
    switch (shape) {
    case 0: /* o */
        cairo_new_sub_path(cr);
        cairo_arc(cr, x, y, half, 0.0, 2.0 * PI);
        cairo_fill_preserve(cr);
        cairo_stroke(cr);
        break;
    case 1: /* x */
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
        cairo_move_to(cr, x - half, y - half);
        cairo_line_to(cr, x + half, y + half);
        cairo_move_to(cr, x - half, y + half);
        cairo_line_to(cr, x + half, y - half);
        cairo_stroke(cr);
        break;
    default: /* ^ */
        cairo_move_to(cr, x, y - half);
        cairo_line_to(cr, x - half, y + half);
        cairo_line_to(cr, x + half, y + half);
        cairo_close_path(cr);
        cairo_fill_preserve(cr);
        cairo_stroke(cr);
        break;
    }
}

const char *plot_decision_boundary_png(const char *path, const plot_class_grid *grid,
                                       const double *points, const int32_t *labels,
                                       size_t n_points)
{
    if (grid->cols < 2 || grid->rows < 2 || !(grid->step > 0.0))
        return "the grid needs at least 2 × 2 points and a positive step";
    if (grid->cols > 32767 || grid->rows > 32767)
        return "the grid is larger than a Cairo image can be";

    /* The book's contourf fills exactly the grid's extent. */
    axis xa = make_axis(grid->x_min, grid->x_min + (double)(grid->cols - 1) * grid->step, 8);
    axis ya = make_axis(grid->y_min, grid->y_min + (double)(grid->rows - 1) * grid->step, 7);

    /* One pixel per grid point, top row = largest y. */
    cairo_surface_t *regions = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)grid->cols,
                                                          (int)grid->rows);
    if (cairo_surface_status(regions) != CAIRO_STATUS_SUCCESS) {
        const char *msg = cairo_status_to_string(cairo_surface_status(regions));
        cairo_surface_destroy(regions);
        return msg;
    }
    cairo_surface_flush(regions);
    unsigned char *data = cairo_image_surface_get_data(regions);
    int stride = cairo_image_surface_get_stride(regions);
    for (size_t r = 0; r < grid->rows; ++r) {
        uint32_t *row = (uint32_t *)(void *)(data + (size_t)stride * (grid->rows - 1 - r));
        for (size_t c = 0; c < grid->cols; ++c) {
            int32_t k = grid->classes[r * grid->cols + c];
            row[c] = k >= 0 ? region_rgb[(size_t)k % N_REGION] : 0xffffffu;
        }
    }
    cairo_surface_mark_dirty(regions);

    cairo_surface_t *surface;
    cairo_t *cr = white_figure(&surface);

    /* Pixel centres sit on the grid points, so the image spans half a step further. */
    cairo_save(cr);
    clip_to_axes(cr);
    double sx = (ax_right - ax_left) / (xa.hi - xa.lo) * grid->step;
    double sy = (ax_bottom - ax_top) / (ya.hi - ya.lo) * grid->step;
    cairo_translate(cr, to_px_x(&xa, grid->x_min) - 0.5 * sx,
                    to_px_y(&ya, ya.hi) - 0.5 * sy);
    cairo_scale(cr, sx, sy);
    cairo_set_source_surface(cr, regions, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(regions);

    /* Points, class by class so later classes draw on top as in the book. */
    int32_t max_label = 0;
    for (size_t i = 0; i < n_points; ++i)
        if (labels[i] > max_label)
            max_label = labels[i];
    for (int32_t k = 0; k <= max_label; ++k) {
        set_rgb(cr, cycle[(size_t)k % N_CYCLE]);
        for (size_t i = 0; i < n_points; ++i)
            if (labels[i] == k)
                draw_marker(cr, k % 3, to_px_x(&xa, points[2 * i]), to_px_y(&ya, points[2 * i + 1]));
    }

    draw_axes(cr, &xa, &ya, "x0", "x1");
    return finish(surface, cr, path);
}
