/* Diff results written out: the JSON document of `remodel diff --json` and the
 * self-contained HTML report (inline CSS and SVG, nothing fetched, printable). */
#include "rm_diff.h"
#include "remodel.h"
#include "rm_model.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- JSON ------------------------------------------------------------------------------ */

static void json_stats(struct rm_json *j, const struct rm_diff_stats *s, bool comparable)
{
    rm_json_key(j, "max_abs");
    comparable ? rm_json_num(j, s->max_abs) : rm_json_null(j);
    rm_json_key(j, "max_rel");
    comparable ? rm_json_num(j, s->max_rel) : rm_json_null(j);
    rm_json_key(j, "mean_abs");
    comparable ? rm_json_num(j, s->mean_abs) : rm_json_null(j);
    rm_json_key(j, "cosine");
    comparable ? rm_json_num(j, s->cosine) : rm_json_null(j);
    rm_json_key(j, "cosine_mean");
    comparable ? rm_json_num(j, s->cosine_mean) : rm_json_null(j);
}

void rm_diff_write_json(const struct rm_diff_result *r, FILE *f)
{
    struct rm_json j;
    rm_json_init(&j, f);
    rm_json_obj_begin(&j);
    rm_json_key(&j, "pass");
    rm_json_bool(&j, r->pass);
    rm_json_key(&j, "samples");
    rm_json_int(&j, r->samples);
    rm_json_key(&j, "seed");
    rm_json_num(&j, (double)r->seed); /* a JSON number: exact up to 2^53 */
    rm_json_key(&j, "atol"); /* null: scaled per output (atol_scale * max|A|) */
    r->atol >= 0 ? rm_json_num(&j, r->atol) : rm_json_null(&j);
    rm_json_key(&j, "atol_scale");
    rm_json_num(&j, r->atol_scale);
    rm_json_key(&j, "rtol");
    rm_json_num(&j, r->rtol);
    rm_json_key(&j, "min_cosine");
    rm_json_num(&j, r->min_cosine);
    rm_json_key(&j, "min_top1");
    rm_json_num(&j, r->min_top1);
    rm_json_key(&j, "outputs");
    rm_json_arr_begin(&j);
    for (size_t k = 0; k < r->n_outputs; k++) {
        const struct rm_diff_output *o = &r->outputs[k];
        rm_json_obj_begin(&j);
        rm_json_key(&j, "name");
        rm_json_str(&j, o->name);
        rm_json_key(&j, "shape");
        rm_json_arr_begin(&j);
        for (int i = 0; i < o->rank; i++)
            rm_json_int(&j, o->dims[i]);
        rm_json_arr_end(&j);
        json_stats(&j, &o->s, !o->note);
        rm_json_key(&j, "scale");
        !o->note ? rm_json_num(&j, o->scale) : rm_json_null(&j);
        rm_json_key(&j, "atol");
        !o->note ? rm_json_num(&j, o->atol) : rm_json_null(&j);
        rm_json_key(&j, "top1");
        rm_json_num(&j, o->top1); /* NAN (not a classifier output) writes null */
        rm_json_key(&j, "top5");
        rm_json_num(&j, o->top5);
        rm_json_key(&j, "mismatched");
        rm_json_int(&j, o->s.n_fail);
        rm_json_key(&j, "compared");
        rm_json_int(&j, o->s.n);
        rm_json_key(&j, "aligned");
        rm_json_bool(&j, o->aligned);
        rm_json_key(&j, "pass");
        rm_json_bool(&j, o->s.pass);
        rm_json_key(&j, "note");
        rm_json_str(&j, o->note);
        rm_json_obj_end(&j);
    }
    rm_json_arr_end(&j);
    rm_json_key(&j, "layers");
    rm_json_arr_begin(&j);
    for (size_t i = 0; i < r->n_layers; i++) {
        const struct rm_diff_layer *l = &r->layers[i];
        rm_json_obj_begin(&j);
        rm_json_key(&j, "path");
        rm_json_str(&j, l->path);
        rm_json_key(&j, "type");
        rm_json_str(&j, l->type);
        rm_json_key(&j, "tensor");
        rm_json_str(&j, l->tensor);
        json_stats(&j, &l->s, l->comparable);
        rm_json_key(&j, "pass");
        rm_json_bool(&j, !l->comparable || l->s.pass); /* not comparable is not a failure */
        rm_json_key(&j, "comparable");
        rm_json_bool(&j, l->comparable);
        rm_json_key(&j, "aligned");
        rm_json_bool(&j, l->aligned);
        rm_json_key(&j, "note");
        rm_json_str(&j, l->note);
        rm_json_obj_end(&j);
    }
    rm_json_arr_end(&j);
    rm_json_key(&j, "first_divergent");
    rm_json_str(&j, r->first_divergent >= 0 ? r->layers[r->first_divergent].path : NULL);
    rm_json_obj_end(&j);
    rm_json_end(&j);
}

/* ---- HTML ------------------------------------------------------------------------------ */

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A number for a table cell: 0 as "0", non-finite as "–". */
static void num(FILE *f, double v, const char *fmt)
{
    if (!isfinite(v))
        fputs(isinf(v) ? "inf" : "&ndash;", f);
    else if (v == 0)
        fputs("0", f);
    else
        fprintf(f, fmt, v);
}

static const char *css =
    ":root{--ok:#1a7f37;--bad:#c62828;--na:#8a93a0;--ink:#1d2430;--line:#e3e6ea}\n"
    "*{box-sizing:border-box}\n"
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "color:var(--ink);margin:0;background:#f4f5f7}\n"
    "main{max-width:1120px;margin:0 auto;padding:24px}\n"
    "h1{font-size:21px;margin:0 0 12px}h2{font-size:16px;margin:0 0 10px}\n"
    ".card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:16px 18px;margin:0 0 16px}\n"
    ".verdict{display:flex;align-items:center;gap:16px;flex-wrap:wrap}\n"
    ".badge{font-weight:700;font-size:18px;color:#fff;padding:6px 16px;border-radius:6px;letter-spacing:.04em}\n"
    ".badge.pass{background:var(--ok)}.badge.fail{background:var(--bad)}\n"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:12px 0 0}\n"
    "dt{color:#5b6573}dd{margin:0;word-break:break-all}\n"
    "code,.mono{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:.9em}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:right;"
    "font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "th{background:#eef0f3;font-weight:600}th.l,td.l{text-align:left}\n"
    "td.path{white-space:normal;word-break:break-all}\n"
    ".ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:700}.na{color:var(--na)}\n"
    "tr.first td{background:#fdecea}\n"
    ".chart{width:100%;height:auto;display:block}\n"
    ".legend{color:#5b6573;font-size:.9em;margin:6px 0 0}\n"
    ".note{color:#5b6573;font-size:.9em}\n"
    "footer{color:#8a93a0;font-size:.85em;margin-top:8px}\n"
    "@media print{body{background:#fff;font-size:11px}main{max-width:none;padding:0}"
    ".card{border:none;padding:0;margin:0 0 14px;break-inside:avoid}"
    ".card.table{break-inside:auto}tr{break-inside:avoid}thead{display:table-header-group}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n";

/* Chart geometry (SVG user units; the SVG scales to the page width). */
#define CW 1060.0
#define CH 380.0
#define ML 64.0
#define MR 16.0
#define MT 28.0
#define MB 120.0

static void chart(FILE *f, const struct rm_diff_result *r)
{
    size_t n = r->n_layers;
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rm_diff_layer *l = &r->layers[i];
        if (!l->comparable || !isfinite(l->s.max_abs) || l->s.max_abs <= 0)
            continue;
        lo = fmin(lo, l->s.max_abs);
        hi = fmax(hi, l->s.max_abs);
    }
    double atol = r->atol > 0 ? r->atol : 1e-5;
    lo = fmin(isfinite(lo) ? lo : atol, atol);
    hi = fmax(hi, atol);
    int dlo = (int)floor(log10(lo)) - 1, dhi = (int)ceil(log10(hi)) + (hi == atol);
    if (dhi - dlo < 3)
        dlo = dhi - 3;
    size_t n_na = 0;
    for (size_t i = 0; i < n; i++)
        n_na += !r->layers[i].comparable;
    /* below the log scale, a band with a row for "exactly 0" and one for "not comparable" */
    double pw = CW - ML - MR, ph = CH - MT - MB, step = pw / (double)(n ? n : 1);
    double band = n_na ? 48 : 28, lh = ph - band, ysep = MT + lh + 7, y0 = ysep + 12, yna = y0 + 18;
#define YPOS(v) (MT + lh * (1.0 - (log10(v) - dlo) / (double)(dhi - dlo)))
#define XPOS(i) (ML + step * ((double)(i) + 0.5))
    fprintf(f, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" "
               "role=\"img\" aria-label=\"max abs error per module\" font-family=\"system-ui,sans-serif\" "
               "font-size=\"11\">\n", CW, CH);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fbfcfd\" "
               "stroke=\"#cfd5dc\"/>\n", ML, MT, pw, ph);
    int dstep = dhi - dlo > 12 ? 2 : 1;
    for (int d = dlo; d <= dhi; d += dstep) {
        double y = YPOS(pow(10, d));
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e9ed\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#5b6573\">1e%d</text>\n",
                ML, ML + pw, y, y, ML - 6, y + 4, d);
    }
    fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#cfd5dc\"/>"
               "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#5b6573\">0</text>\n",
            ML, ML + pw, ysep, ysep, ML - 6, y0 + 4);
    if (n_na)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#5b6573\">n/c</text>\n",
                ML - 6, yna + 4);
    fprintf(f, "<text x=\"14\" y=\"%.1f\" transform=\"rotate(-90 14 %.1f)\" text-anchor=\"middle\" "
               "fill=\"#5b6573\">max |B &#8722; A| (log)</text>\n", MT + lh / 2, MT + lh / 2);
    /* tolerance line */
    double ya = YPOS(atol);
    fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d97706\" "
               "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"
               "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#b45309\">atol %g</text>\n",
            ML, ML + pw, ya, ya, ML + pw - 4, ya - 5, atol);
    /* first divergent marker */
    if (r->first_divergent >= 0) {
        double x = XPOS(r->first_divergent);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c62828\" "
                   "stroke-width=\"1.5\" stroke-dasharray=\"3 3\"/>", x, x, MT, MT + ph);
        int right = x > ML + pw * 0.6;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"#c62828\" font-weight=\"700\">"
                   "first divergent: ", right ? x - 6 : x + 6, MT - 10, right ? "end" : "start");
        esc(f, r->layers[r->first_divergent].path);
        fputs("</text>\n", f);
    }
    /* the error curve through comparable modules; zeros sit on the bottom edge */
    fputs("<polyline fill=\"none\" stroke=\"#4b6cb7\" stroke-width=\"1.4\" points=\"", f);
    for (size_t i = 0; i < n; i++) {
        const struct rm_diff_layer *l = &r->layers[i];
        if (!l->comparable)
            continue;
        double v = l->s.max_abs, y = v > 0 && isfinite(v) ? YPOS(v) : (v > 0 ? MT : y0);
        fprintf(f, "%.1f,%.1f ", XPOS(i), y);
    }
    fputs("\"/>\n", f);
    double rad = step < 8 ? 2.2 : 3.6;
    for (size_t i = 0; i < n; i++) {
        const struct rm_diff_layer *l = &r->layers[i];
        double x = XPOS(i), v = l->s.max_abs;
        fputs("<g><title>", f);
        esc(f, l->path);
        fprintf(f, " (%s): ", l->type);
        if (!l->comparable) {
            fputs("not comparable", f);
            if (l->note) {
                fputs(" &#8212; ", f);
                esc(f, l->note);
            }
        } else {
            fprintf(f, "max abs %.3g, max rel %.3g, cosine %.6f%s", v, l->s.max_rel, l->s.cosine,
                    l->aligned ? " (channel-aligned)" : "");
        }
        fputs("</title>", f);
        if (!l->comparable)
            fprintf(f, "<path d=\"M%.1f %.1fl5 5m0 -5l-5 5\" transform=\"translate(-2.5 -2.5)\" "
                       "stroke=\"#8a93a0\" stroke-width=\"1.5\"/>", x, yna);
        else if (v > 0)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>", x,
                    isfinite(v) ? YPOS(v) : MT, rad, l->s.pass ? "#1a7f37" : "#c62828");
        else
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"#fff\" stroke=\"#1a7f37\" "
                       "stroke-width=\"1.4\"/>", x, y0, rad);
        fputs("</g>\n", f);
    }
    /* module labels, thinned out so they stay legible */
    size_t every = (size_t)ceil((double)n / 64.0);
    if (every < 1)
        every = 1;
    for (size_t i = 0; i < n; i += every) {
        const char *p = r->layers[i].path;
        size_t len = strlen(p);
        double x = XPOS(i), y = MT + ph + 10;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(-55 %.1f %.1f)\" text-anchor=\"end\" "
                   "fill=\"%s\" font-size=\"10\"%s>", x + 3, y, x + 3, y,
                (int)i == r->first_divergent ? "#c62828" : "#3b4450",
                (int)i == r->first_divergent ? " font-weight=\"700\"" : "");
        if (len > 26) {
            fputs("&#8230;", f);
            esc(f, p + len - 25);
        } else {
            esc(f, p);
        }
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
#undef YPOS
#undef XPOS
}

static void html(FILE *f, const struct rm_diff_result *r, const struct rm_report_info *in)
{
    size_t n_fail = 0, n_layer_fail = 0, n_na = 0;
    for (size_t k = 0; k < r->n_outputs; k++)
        n_fail += !r->outputs[k].s.pass;
    for (size_t i = 0; i < r->n_layers; i++) {
        n_layer_fail += r->layers[i].comparable && !r->layers[i].s.pass;
        n_na += !r->layers[i].comparable;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>remodel diff: ", f);
    esc(f, r->pass ? "PASS" : "FAIL");
    fputs("</title>\n<style>\n", f);
    fputs(css, f);
    fputs("</style>\n</head>\n<body>\n<main>\n<h1>remodel diff</h1>\n", f);

    fputs("<section class=\"card verdict-card\">\n<div class=\"verdict\">", f);
    fprintf(f, "<span class=\"badge %s\">%s</span><span>", r->pass ? "pass" : "fail",
            r->pass ? "PASS" : "FAIL");
    if (r->pass)
        fprintf(f, "%s within tolerance.", r->n_outputs == 1 ? "The output is" : "All outputs are");
    else
        fprintf(f, "%zu of %zu output%s outside tolerance.", n_fail, r->n_outputs,
                r->n_outputs == 1 ? "" : "s");
    if (r->n_layers) {
        if (r->first_divergent >= 0) {
            fputs(" First divergent module: <code>", f);
            esc(f, r->layers[r->first_divergent].path);
            fputs("</code> (", f);
            esc(f, r->layers[r->first_divergent].type);
            fputs(").", f);
        } else {
            fputs(" No module diverges.", f);
        }
    }
    fputs("</span></div>\n<dl>\n", f);
    fputs("<dt>A (reference)</dt><dd class=\"mono\">", f);
    esc(f, in && in->model_a ? in->model_a : "A");
    fputs("</dd>\n<dt>B</dt><dd class=\"mono\">", f);
    esc(f, in && in->model_b ? in->model_b : "B");
    fputs("</dd>\n", f);
    if (in && in->inputs) {
        fputs("<dt>inputs</dt><dd>", f);
        esc(f, in->inputs);
        fputs("</dd>\n", f);
    }
    fprintf(f, "<dt>tolerance</dt><dd>atol %g, rtol %g &#8212; an element fails when "
               "|B&#8722;A| &gt; atol and |B&#8722;A| / max(|A|,|B|) &gt; rtol</dd>\n", r->atol, r->rtol);
    if (r->n_layers)
        fprintf(f, "<dt>modules</dt><dd>%zu compared in topological order (unfused plans), %zu "
                   "failing, %zu not comparable</dd>\n", r->n_layers - n_na, n_layer_fail, n_na);
    fputs("</dl>\n</section>\n", f);

    fputs("<section class=\"card table\">\n<h2>Outputs</h2>\n<table>\n<thead><tr><th class=\"l\">output"
          "</th><th class=\"l\">shape</th><th>max abs</th><th>max rel</th><th>mean abs</th><th>cosine</th>"
          "<th>top-1</th><th>top-5</th><th>mismatched</th><th class=\"l\">result</th></tr></thead>\n<tbody>\n", f);
    for (size_t k = 0; k < r->n_outputs; k++) {
        const struct rm_diff_output *o = &r->outputs[k];
        fputs("<tr><td class=\"l mono\">", f);
        esc(f, o->name);
        fputs("</td><td class=\"l\">[", f);
        for (int i = 0; i < o->rank; i++)
            fprintf(f, "%s%lld", i ? ", " : "", (long long)o->dims[i]);
        fputs("]</td>", f);
        if (o->note) {
            fputs("<td colspan=\"7\" class=\"l note\">", f);
            esc(f, o->note);
            fputs("</td>", f);
        } else {
            fputs("<td>", f);
            num(f, o->s.max_abs, "%.3g");
            fputs("</td><td>", f);
            num(f, o->s.max_rel, "%.3g");
            fputs("</td><td>", f);
            num(f, o->s.mean_abs, "%.3g");
            fprintf(f, "</td><td>%.6f</td><td>", o->s.cosine);
            if (isnan(o->top1))
                fputs("&ndash;", f);
            else
                fprintf(f, "%.1f%%", 100 * o->top1);
            fputs("</td><td>", f);
            if (isnan(o->top5))
                fputs("&ndash;", f);
            else
                fprintf(f, "%.1f%%", 100 * o->top5);
            fprintf(f, "</td><td>%lld / %lld</td>", (long long)o->s.n_fail, (long long)o->s.n);
        }
        fprintf(f, "<td class=\"l %s\">%s</td></tr>\n", o->s.pass ? "ok" : "bad", o->s.pass ? "pass" : "FAIL");
    }
    fputs("</tbody>\n</table>\n</section>\n", f);

    if (!r->n_layers) {
        fputs("<p class=\"note\">Run with <code>--layers</code> to compare every module's output and "
              "chart the error along the network.</p>\n", f);
    } else {
        fputs("<section class=\"card\">\n<h2>Error along the network</h2>\n", f);
        chart(f, r);
        fputs("<p class=\"legend\">One point per module in topological order: max |B&#8722;A| of its "
              "output on a log scale. <span class=\"ok\">&#9679;</span> within tolerance, "
              "<span class=\"bad\">&#9679;</span> outside, hollow in the bottom row: exactly equal (0), "
              "<span class=\"na\">&#215;</span> not comparable. Dashed orange: atol; dashed red: "
              "first divergent module.</p>\n</section>\n", f);
        fputs("<section class=\"card table\">\n<h2>Modules</h2>\n<table>\n<thead><tr><th>#</th>"
              "<th class=\"l\">module</th><th class=\"l\">type</th><th>max abs</th><th>max rel</th>"
              "<th>cosine</th><th>growth</th><th class=\"l\">result</th></tr></thead>\n<tbody>\n", f);
        double prev = 0;
        for (size_t i = 0; i < r->n_layers; i++) {
            const struct rm_diff_layer *l = &r->layers[i];
            fprintf(f, "<tr%s><td>%zu</td><td class=\"l path mono\">", (int)i == r->first_divergent
                                                                          ? " class=\"first\"" : "", i);
            esc(f, l->path);
            fputs("</td><td class=\"l\">", f);
            esc(f, l->type);
            fputs("</td>", f);
            if (!l->comparable) {
                fputs("<td colspan=\"4\" class=\"l note\">", f);
                esc(f, l->note ? l->note : "");
                fputs("</td><td class=\"l na\">not comparable</td></tr>\n", f);
                continue;
            }
            fputs("<td>", f);
            num(f, l->s.max_abs, "%.3g");
            fputs("</td><td>", f);
            num(f, l->s.max_rel, "%.3g");
            fprintf(f, "</td><td>%.6f</td><td>", l->s.cosine);
            if (prev > 0 && l->s.max_abs > 0 && isfinite(l->s.max_abs))
                fprintf(f, "&#215;%.2g", l->s.max_abs / prev);
            fprintf(f, "</td><td class=\"l %s\">%s%s</td></tr>\n", l->s.pass ? "ok" : "bad",
                    l->s.pass ? "pass" : "FAIL", l->aligned ? " <span class=\"na\">(aligned)</span>" : "");
            if (isfinite(l->s.max_abs))
                prev = l->s.max_abs;
        }
        fputs("</tbody>\n</table>\n</section>\n", f);
    }
    fputs("<footer>Written by remodel diff. Self-contained: no scripts, no external "
          "resources.</footer>\n</main>\n</body>\n</html>\n", f);
}

int rm_diff_write_report(const struct rm_diff_result *r, const struct rm_report_info *info,
                         const char *path, struct rm_error *err)
{
    char *buf = NULL, tmp[PATH_MAX];
    size_t size = 0;
    int fd = -1, rc, ok = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return rm_error_set(err, RM_ENOMEM, "%s: out of memory for the report", path);
    html(f, r, info);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return rm_error_set(err, RM_ENOMEM, "%s: out of memory for the report", path);
    }
    if ((rc = rm_atomic_open(path, tmp, sizeof tmp, &fd, err)))
        goto done;
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, buf + off, size - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = rm_error_set(err, RM_EIO, "%s: write failed: %s", path, strerror(w < 0 ? errno : EIO));
            break;
        }
        off += (size_t)w;
    }
    ok = rc == 0;
    rc = rm_atomic_commit(path, tmp, fd, ok, err); /* removes the temporary file when !ok */
done:
    free(buf);
    return rc;
}
