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
    "h2.sub{font-size:14px;margin:14px 0 6px}table.top{width:auto}\n"
    "ol.hist{margin:0;padding-left:1.4em}\n"
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

/* What a chart plots per module. */
struct series {
    const char *what;       /* axis label (HTML) */
    double (*value)(const struct rm_diff_layer *l);
    double line;            /* a threshold drawn dashed, or 0 */
    const char *line_label; /* printf format for it */
};

static double layer_max_abs(const struct rm_diff_layer *l)
{
    return l->s.max_abs;
}

/* 1 - cosine: how far a module's output turned, whatever its scale */
static double layer_turn(const struct rm_diff_layer *l)
{
    return isnan(l->s.cosine) ? INFINITY : fmax(0.0, 1.0 - l->s.cosine);
}

static void chart(FILE *f, const struct rm_diff_result *r, const struct series *sr)
{
    size_t n = r->n_layers;
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rm_diff_layer *l = &r->layers[i];
        double v = sr->value(l);
        if (!l->comparable || !isfinite(v) || v <= 0)
            continue;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    double ref = sr->line > 0 ? sr->line : isfinite(lo) ? lo : 1e-6;
    lo = fmin(isfinite(lo) ? lo : ref, ref);
    hi = fmax(hi, ref);
    int dlo = (int)floor(log10(lo)) - 1, dhi = (int)ceil(log10(hi)) + (hi == ref);
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
    fprintf(f, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%s per module\" "
               "font-family=\"system-ui,sans-serif\" font-size=\"11\">\n", CW, CH,
            sr->value == layer_turn ? "one minus cosine" : "max abs error");
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
               "fill=\"#5b6573\">%s (log)</text>\n", MT + lh / 2, MT + lh / 2, sr->what);
    if (sr->line > 0) {
        double ya = YPOS(sr->line);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d97706\" "
                   "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#b45309\">",
                ML, ML + pw, ya, ya, ML + pw - 4, ya - 5);
        fprintf(f, sr->line_label, sr->line);
        fputs("</text>\n", f);
    }
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
    /* the curve through comparable modules; zeros sit on the bottom row */
    fputs("<polyline fill=\"none\" stroke=\"#4b6cb7\" stroke-width=\"1.4\" points=\"", f);
    for (size_t i = 0; i < n; i++) {
        const struct rm_diff_layer *l = &r->layers[i];
        if (!l->comparable)
            continue;
        double v = sr->value(l), y = v > 0 && isfinite(v) ? YPOS(v) : (v > 0 ? MT : y0);
        fprintf(f, "%.1f,%.1f ", XPOS(i), y);
    }
    fputs("\"/>\n", f);
    double rad = step < 8 ? 2.2 : 3.6;
    for (size_t i = 0; i < n; i++) {
        const struct rm_diff_layer *l = &r->layers[i];
        double x = XPOS(i), v = sr->value(l);
        fputs("<g><title>", f);
        esc(f, l->path);
        fputs(" (", f);
        esc(f, l->type);
        fputs("): ", f);
        if (!l->comparable) {
            fputs("not comparable", f);
            if (l->note) {
                fputs(" &#8212; ", f);
                esc(f, l->note);
            }
        } else {
            fprintf(f, "max abs %.3g, max rel %.3g, cosine %.6f%s", l->s.max_abs, l->s.max_rel, l->s.cosine,
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

/* Per-channel max |B - A| of the first divergent module, as bars (log scale), with the
 * channels that moved most listed. */
static void channels_card(FILE *f, const struct rm_diff_result *r)
{
    const struct rm_diff_channels *c = &r->channels;
    if (c->layer < 0 || c->layer != r->first_divergent || c->n < 1)
        return;
    const struct rm_diff_layer *l = &r->layers[c->layer];
    double hi = 0, lo = INFINITY;
    for (int64_t k = 0; k < c->n; k++)
        if (isfinite(c->max_abs[k]) && c->max_abs[k] > 0) {
            hi = fmax(hi, c->max_abs[k]);
            lo = fmin(lo, c->max_abs[k]);
        }
    fputs("<section class=\"card\">\n<h2>Channels of the first divergent module: <code>", f);
    esc(f, l->path);
    fprintf(f, "</code></h2>\n<p class=\"note\">max |B&#8722;A| of each of its %lld output channels "
               "(sample %d), over the batch and spatial positions.</p>\n", (long long)c->n, c->sample);
    if (hi > 0) {
        int dlo = (int)floor(log10(lo)), dhi = (int)ceil(log10(hi));
        if (dhi - dlo < 2)
            dlo = dhi - 2;
        double w = CW - ML - MR, h = 160, step = w / (double)c->n, bw = step > 2 ? step * 0.8 : step;
        fprintf(f, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"error per channel\" "
                   "font-family=\"system-ui,sans-serif\" font-size=\"11\">\n", CW, h + 40);
        for (int d = dlo; d <= dhi; d++) {
            double y = 10 + h * (1.0 - (double)(d - dlo) / (double)(dhi - dlo));
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e9ed\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#5b6573\">1e%d</text>\n",
                    ML, ML + w, y, y, ML - 6, y + 4, d);
        }
        for (int64_t k = 0; k < c->n; k++) {
            double v = c->max_abs[k];
            if (!(v > 0))
                continue;
            double t = isfinite(v) ? (log10(v) - dlo) / (double)(dhi - dlo) : 1.0;
            double y = 10 + h * (1.0 - fmin(1.0, fmax(0.0, t)));
            fprintf(f, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"#c62828\" "
                       "opacity=\"0.75\"><title>channel %lld: max abs %.3g, max |A| %.3g</title></rect>\n",
                    ML + step * (double)k, y, bw, 10 + h - y, (long long)k, v, c->scale[k]);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#5b6573\">channel (0 to %lld)"
                   "</text>\n</svg>\n", ML + w / 2, h + 32, (long long)(c->n - 1));
    }
    /* the ten channels that moved most, largest first (NaN never chosen over a number) */
    int64_t top[10];
    int nt = 0;
    for (; nt < 10 && nt < c->n; nt++) {
        int64_t best = -1;
        for (int64_t k = 0; k < c->n; k++) {
            bool taken = false;
            for (int q = 0; q < nt && !taken; q++)
                taken = top[q] == k;
            if (!taken && (best < 0 || c->max_abs[k] > c->max_abs[best]))
                best = k;
        }
        top[nt] = best;
    }
    int64_t moved = 0;
    for (int64_t k = 0; k < c->n; k++)
        moved += !(c->max_abs[k] == 0);
    fprintf(f, "<p class=\"note\">%lld of %lld channels differ%s</p>\n", (long long)moved, (long long)c->n,
            moved ? "; the ones that moved most:" : ".");
    fputs("<table class=\"top\">\n<thead><tr><th>channel</th><th>max abs</th><th>max |A|</th><th>relative</th></tr>"
          "</thead>\n<tbody>\n", f);
    for (int q = 0; q < nt; q++) {
        int64_t k = top[q];
        if (c->max_abs[k] == 0)
            break;
        fprintf(f, "<tr><td>%lld</td><td>", (long long)k);
        num(f, c->max_abs[k], "%.3g");
        fputs("</td><td>", f);
        num(f, c->scale[k], "%.3g");
        fputs("</td><td>", f);
        num(f, c->scale[k] > 0 ? c->max_abs[k] / c->scale[k] : INFINITY, "%.3g");
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n</section>\n", f);
}

static void shape(FILE *f, int rank, const int64_t *dims)
{
    fputc('[', f);
    for (int i = 0; i < rank; i++)
        fprintf(f, "%s%lld", i ? ", " : "", (long long)dims[i]);
    fputc(']', f);
}

/* A model's edit history, one line per edit. */
static void history(FILE *f, const char *label, const char *h)
{
    fputs("<dt>", f);
    esc(f, label);
    fputs("</dt><dd><ol class=\"hist\">", f);
    while (h && *h) {
        const char *nl = strchr(h, '\n');
        size_t n = nl ? (size_t)(nl - h) : strlen(h);
        char line[1200];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), h);
        fputs("<li class=\"mono\">", f);
        esc(f, line);
        fputs("</li>", f);
        h = nl ? nl + 1 : h + n;
    }
    fputs("</ol></dd>\n", f);
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
    fprintf(f, "<dt>samples</dt><dd>%d (random inputs seeded %llu + k for sample k where none were given)</dd>\n",
            r->samples, (unsigned long long)r->seed);
    fputs("<dt>verdict rule</dt><dd>an element fails when |B&#8722;A| &gt; atol + rtol&#183;|A|, with ", f);
    if (r->atol >= 0)
        fprintf(f, "atol %g", r->atol);
    else
        fprintf(f, "atol %g &#215; max|A| of each output on each sample", r->atol_scale);
    fprintf(f, " and rtol %g; an output fails when an element does, when its cosine on a sample is below %g",
            r->rtol, r->min_cosine);
    if (r->min_top1 > 0)
        fprintf(f, ", or when fewer than %g%% of its rows agree on the top class", 100 * r->min_top1);
    fputs("</dd>\n", f);
    if (r->n_layers)
        fprintf(f, "<dt>modules</dt><dd>%zu compared in topological order (unfused plans), %zu "
                   "failing, %zu not comparable</dd>\n", r->n_layers - n_na, n_layer_fail, n_na);
    fputs("</dl>\n</section>\n", f);

    if (r->history_a || r->history_b) {
        fputs("<section class=\"card\">\n<h2>Edits</h2>\n<dl>\n", f);
        if (r->history_a)
            history(f, "A", r->history_a);
        if (r->history_b)
            history(f, "B", r->history_b);
        fputs("</dl>\n</section>\n", f);
    }

    fputs("<section class=\"card table\">\n<h2>Outputs</h2>\n<table>\n<thead><tr><th class=\"l\">output"
          "</th><th class=\"l\">shape</th><th>max abs</th><th>atol</th><th>max rel</th><th>mean abs</th>"
          "<th>cosine (min)</th><th>cosine (mean)</th><th>top-1</th><th>top-5</th><th>mismatched</th>"
          "<th class=\"l\">result</th></tr></thead>\n<tbody>\n", f);
    for (size_t k = 0; k < r->n_outputs; k++) {
        const struct rm_diff_output *o = &r->outputs[k];
        fputs("<tr><td class=\"l mono\">", f);
        esc(f, o->name);
        fputs("</td><td class=\"l\">", f);
        shape(f, o->rank, o->dims);
        fputs("</td>", f);
        if (o->note) {
            fputs("<td colspan=\"9\" class=\"l note\">", f);
            esc(f, o->note);
            fputs("</td>", f);
        } else {
            fputs("<td>", f);
            num(f, o->s.max_abs, "%.3g");
            fputs("</td><td>", f);
            num(f, o->atol, "%.3g");
            fputs("</td><td>", f);
            num(f, o->s.max_rel, "%.3g");
            fputs("</td><td>", f);
            num(f, o->s.mean_abs, "%.3g");
            fprintf(f, "</td><td>%.6f</td><td>%.6f</td><td>", o->s.cosine, o->s.cosine_mean);
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
    fputs("</tbody>\n</table>\n", f);
    for (size_t k = 0; k < r->n_outputs; k++) {
        const struct rm_diff_output *o = &r->outputs[k];
        if (!o->n_top)
            continue;
        fputs("<h2 class=\"sub\">Top classes of <code>", f);
        esc(f, o->name);
        fputs("</code>, sample 0, first row</h2>\n<table class=\"top\">\n<thead><tr><th>rank</th>"
              "<th>A: class</th><th>A: value</th><th>B: class</th><th>B: value</th></tr></thead>\n<tbody>\n", f);
        for (int q = 0; q < o->n_top; q++) {
            fprintf(f, "<tr><td>%d</td><td>%lld</td><td>", q + 1, (long long)o->top_a[q]);
            num(f, o->top_va[q], "%.4g");
            fprintf(f, "</td><td class=\"%s\">%lld</td><td>", o->top_a[q] == o->top_b[q] ? "" : "bad",
                    (long long)o->top_b[q]);
            num(f, o->top_vb[q], "%.4g");
            fputs("</td></tr>\n", f);
        }
        fputs("</tbody>\n</table>\n", f);
    }
    fputs("</section>\n", f);

    if (!r->n_layers) {
        fputs("<p class=\"note\">Run with <code>--layers</code> to compare every module's output and "
              "chart the error along the network.</p>\n", f);
    } else {
        struct series abs_s = {"max |B &#8722; A|", layer_max_abs, r->atol > 0 ? r->atol : 0, "atol %g"};
        struct series turn_s = {"1 &#8722; cosine", layer_turn, 1.0 - r->min_cosine, "cosine floor: 1 &#8722; %g"};
        fputs("<section class=\"card\">\n<h2>Error along the network</h2>\n", f);
        chart(f, r, &abs_s);
        fputs("<p class=\"legend\">One point per module in topological order: max |B&#8722;A| of its "
              "output on a log scale (it grows with the activations' scale). "
              "<span class=\"ok\">&#9679;</span> within tolerance, <span class=\"bad\">&#9679;</span> outside, "
              "hollow in the bottom row: exactly equal (0), <span class=\"na\">&#215;</span> not comparable. "
              "Dashed red: first divergent module.</p>\n", f);
        chart(f, r, &turn_s);
        fputs("<p class=\"legend\">The same modules by 1 &#8722; cosine of their outputs: how far the output "
              "turned, whatever its scale. Dashed orange: the cosine floor of the verdict.</p>\n</section>\n", f);
        channels_card(f, r);
        fputs("<section class=\"card table\">\n<h2>Modules</h2>\n<table>\n<thead><tr><th>#</th>"
              "<th class=\"l\">module</th><th class=\"l\">type</th><th class=\"l\">shape (A &#8594; B)</th>"
              "<th>max abs</th><th>max rel</th><th>cosine</th><th>growth</th><th class=\"l\">result</th>"
              "</tr></thead>\n<tbody>\n", f);
        double prev = 0;
        for (size_t i = 0; i < r->n_layers; i++) {
            const struct rm_diff_layer *l = &r->layers[i];
            fprintf(f, "<tr%s><td>%zu</td><td class=\"l path mono\">", (int)i == r->first_divergent
                                                                          ? " class=\"first\"" : "", i);
            esc(f, l->path);
            fputs("</td><td class=\"l\">", f);
            esc(f, l->type);
            fputs("</td><td class=\"l\">", f);
            if (l->rank_a >= 0) {
                shape(f, l->rank_a, l->dims_a);
                if (l->rank_a != l->rank_b ||
                    memcmp(l->dims_a, l->dims_b, sizeof(int64_t) * (size_t)(l->rank_a > 0 ? l->rank_a : 0))) {
                    fputs(" &#8594; ", f);
                    shape(f, l->rank_b, l->dims_b);
                }
            }
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
