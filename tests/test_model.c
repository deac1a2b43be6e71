/* Tests for loading, saving and checking models (rm_model, rm_graph, rm_check).
 * Models come from testdata/ (PyTorch exports) or are built here with protobuf-c;
 * malformed files are derived from real ones by truncation, corruption and edits. */
#include "rm_check.h"
#include "rm_extdata.h"
#include "rm_fs.h"
#include "rm_graph.h"
#include "rm_model.h"
#include "rm_tensor.h"
#include "test_util.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Fresh private folder for files a test writes. */
static char *tmpdir(void)
{
    char *t = strdup("/tmp/rm-test-XXXXXX");
    ck_assert(mkdtemp(t) != NULL);
    return t;
}

/* Testdata model NAME copied to DIR/m.onnx (its path in path) and loaded from there;
 * *bytes holds the copied file (malloc'd, *n bytes) to compare with afterwards. */
static struct rm_model *load_copy(const char *name, const char *dir, char *path, size_t cap, char **bytes,
                                  size_t *n)
{
    char src[1024];
    struct rm_error err;
    struct rm_model *m;
    snprintf(src, sizeof src, "%s/%s.onnx", rm_test_testdata(), name);
    snprintf(path, cap, "%s/m.onnx", dir);
    *bytes = rm_test_read_file(src, n);
    write_file(path, *bytes, *n);
    ck_assert_msg(rm_model_load(&m, path, NULL, &err) == 0, "%s", err.msg);
    return m;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static const char *models[] = {"resnet18", "tiny_resnet", "mobilenet_tiny", "concat_net", "se_net",
                               "shared_init"};
#define N_MODELS (int)(sizeof models / sizeof models[0])

/* Every testdata model saves back byte for byte. */
START_TEST(round_trip_identical)
{
    char path[1024], out[1024];
    char *dir = tmpdir();
    snprintf(path, sizeof path, "%s/%s.onnx", rm_test_testdata(), models[_i]);
    snprintf(out, sizeof out, "%s/out.onnx", dir);
    struct rm_error err;
    struct rm_model *m;
    ck_assert_msg(rm_model_load(&m, path, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_model_save(m, out, NULL, &err) == 0, "%s", err.msg);
    rm_model_free(m);
    size_t na, nb;
    char *a = rm_test_read_file(path, &na), *b = rm_test_read_file(out, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(a, b, na) == 0, "%s: saved bytes differ", models[_i]);
    ck_assert_int_eq(count_files(dir), 1); /* no temporary file left */
    free(a);
    free(b);
    unlink(out);
    rmdir(dir);
    free(dir);
}
END_TEST

/* Unknown fields survive a round trip (protobuf-c keeps and re-emits them; here the
 * unknown field is the last one of the message, where re-emission keeps the order). */
START_TEST(round_trip_unknown_field)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/shared_init.onnx", rm_test_testdata());
    size_t n;
    char *a = rm_test_read_file(path, &n);
    /* append field 99 (varint 7) to ModelProto, and field 1000 (bytes "hi") */
    const unsigned char extra[] = {0x98, 0x06, 0x07, 0xc2, 0x3e, 0x02, 'h', 'i'};
    char *b = malloc(n + sizeof extra);
    memcpy(b, a, n);
    memcpy(b + n, extra, sizeof extra);
    struct rm_error err;
    struct rm_model *m;
    ck_assert_msg(rm_model_load_buffer(&m, b, n + sizeof extra, "x", NULL, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(m->proto->base.n_unknown_fields, 2);
    size_t packed = protobuf_c_message_get_packed_size(&m->proto->base);
    ck_assert_uint_eq(packed, n + sizeof extra);
    uint8_t *c = malloc(packed);
    protobuf_c_message_pack(&m->proto->base, c);
    ck_assert(memcmp(b, c, packed) == 0);
    rm_model_free(m);
    free(a);
    free(b);
    free(c);
}
END_TEST

static void load_expect_fail(const void *data, size_t n, int code, const char *needle)
{
    struct rm_error err;
    rm_error_clear(&err);
    struct rm_model *m = (struct rm_model *)1;
    int rc = rm_model_load_buffer(&m, data, n, "bad.onnx", NULL, &err);
    ck_assert_int_eq(rc, code);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, "bad.onnx") != NULL, "message does not name the file: %s", err.msg);
    if (needle)
        ck_assert_msg(strstr(err.msg, needle) != NULL, "expected '%s' in: %s", needle, err.msg);
}

START_TEST(empty_file)
{
    load_expect_fail("", 0, RM_EFORMAT, "empty");
}
END_TEST

START_TEST(missing_file)
{
    struct rm_error err;
    struct rm_model *m;
    ck_assert_int_eq(rm_model_load(&m, "/nonexistent/x.onnx", NULL, &err), RM_EIO);
    ck_assert(strstr(err.msg, "/nonexistent/x.onnx") != NULL);
    ck_assert_int_eq(rm_model_load(&m, "/tmp", NULL, &err), RM_EIO);
    ck_assert(strstr(err.msg, "not a regular file") != NULL);
}
END_TEST

/* Names quoted from a file may hold control characters: messages stay on one line. */
START_TEST(error_messages_are_one_line)
{
    struct rm_error err;
    rm_error_clear(&err);
    ck_assert_int_eq(rm_error_set(&err, RM_EFORMAT, "input '%s' is bad", "a\nb\r\x1b[2Jc\x7f"), RM_EFORMAT);
    ck_assert_str_eq(err.msg, "input 'a?b??[2Jc?' is bad");
    rm_error_prefix(&err, "node '%s'", "n\tm");
    ck_assert_str_eq(err.msg, "node 'n?m': input 'a?b??[2Jc?' is bad");
}
END_TEST

/* Truncated at any offset: a clean error, or (at a top-level field boundary) a model
 * that loads and then fails the structural check. Never a crash. */
START_TEST(truncated_everywhere)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", rm_test_testdata(), "tiny_resnet");
    size_t n;
    char *a = rm_test_read_file(path, &n);
    int loaded = 0, failed = 0;
    for (size_t cut = 1; cut < n; cut += (cut < 512 ? 1 : 37)) {
        struct rm_error err;
        rm_error_clear(&err);
        struct rm_model *m;
        char *copy = malloc(cut); /* exact-size copy so ASan sees overreads */
        memcpy(copy, a, cut);
        int rc = rm_model_load_buffer(&m, copy, cut, "t.onnx", NULL, &err);
        free(copy);
        if (rc == 0) {
            struct rm_graph g;
            ck_assert_int_eq(rm_graph_init(&g, m, &err), 0);
            ck_assert_msg(rm_check_model(&g, NULL) > 0, "truncated at %zu yet clean", cut);
            rm_graph_free(&g);
            rm_model_free(m);
            loaded++;
        } else {
            ck_assert_int_eq(rc, RM_EFORMAT);
            ck_assert(err.msg[0] != '\0');
            failed++;
        }
    }
    ck_assert_int_gt(failed, 100);
    free(a);
}
END_TEST

/* Load bytes and, if they load, index and check them; a refusal must say why. */
static void load_and_check(const void *data, size_t n, const char *name)
{
    struct rm_error err;
    struct rm_model *m;
    if (rm_model_load_buffer(&m, data, n, name, NULL, &err) != 0) {
        ck_assert(err.msg[0]);
        return;
    }
    struct rm_graph g;
    if (rm_graph_init(&g, m, &err) == 0) {
        rm_check_model(&g, NULL);
        rm_graph_free(&g);
    }
    rm_model_free(m);
}

/* Random bytes and a real model with random byte flips: errors or loads, no crash. */
START_TEST(random_garbage)
{
    uint64_t s = 88172645463325252ull;
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 1 + (size_t)(iter * 37 % 4096);
        unsigned char *buf = malloc(n);
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            buf[i] = (unsigned char)s;
        }
        load_and_check(buf, n, "r.onnx");
        free(buf);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/se_net.onnx", rm_test_testdata());
    size_t n;
    char *a = rm_test_read_file(path, &n);
    for (int iter = 0; iter < 300; iter++) {
        char *b = malloc(n);
        memcpy(b, a, n);
        for (int k = 0; k < 4; k++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            b[s % n] = (char)(s >> 32);
        }
        load_and_check(b, n, "f.onnx");
        free(b);
    }
    free(a);
}
END_TEST

/* A length prefix that claims more bytes than the file holds. */
START_TEST(length_past_end)
{
    /* ModelProto field 7 (graph), length 1000, only 2 bytes follow */
    const unsigned char buf[] = {0x3a, 0xe8, 0x07, 0x0a, 0x00};
    load_expect_fail(buf, sizeof buf, RM_EFORMAT, "graph");
}
END_TEST

/* Graphs nested in attributes 200 deep: refused, not a stack overflow. */
START_TEST(deep_nesting)
{
    /* innermost: GraphProto{}; each level wraps it: NodeProto.attribute(5) ->
     * AttributeProto.g(6) -> GraphProto.node(1) -> ... */
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap), *tmp = malloc(cap);
    for (int level = 0; level < 200; level++) {
        /* wrap the current bytes (a GraphProto) as AttributeProto.g, then NodeProto.attribute,
         * then GraphProto.node */
        const unsigned char tags[] = {0x32 /* g=6 */, 0x2a /* attribute=5 */, 0x0a /* node=1 */};
        for (int t = 0; t < 3; t++) {
            size_t hdr = 1;
            unsigned char lenb[5];
            size_t l = len, k = 0;
            do {
                lenb[k++] = (unsigned char)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
                l >>= 7;
            } while (l);
            hdr += k;
            ck_assert(len + hdr < cap);
            tmp[0] = tags[t];
            memcpy(tmp + 1, lenb, k);
            memcpy(tmp + hdr, buf, len);
            len += hdr;
            memcpy(buf, tmp, len);
        }
    }
    /* ModelProto.graph = 7 */
    tmp[0] = 0x3a;
    size_t l = len, k = 1;
    do {
        tmp[k++] = (unsigned char)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
        l >>= 7;
    } while (l);
    memcpy(tmp + k, buf, len);
    load_expect_fail(tmp, len + k, RM_EFORMAT, "nested too deeply");
    free(buf);
    free(tmp);
}
END_TEST

/* A file whose unpacked form would exceed the memory limit is refused before unpacking. */
START_TEST(memory_limit)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tiny_resnet.onnx", rm_test_testdata());
    struct rm_load_options lim = {.max_memory = 4096};
    struct rm_error err;
    struct rm_model *m;
    ck_assert_int_eq(rm_model_load(&m, path, &lim, &err), RM_ENOMEM);
    ck_assert_msg(strstr(err.msg, "limit") != NULL, "%s", err.msg);
}
END_TEST

/* ---- structural checks on models edited in memory --------------------------- */

struct findings {
    int n;
    char text[4096];
};

static void collect(void *ctx, const char *msg)
{
    struct findings *f = ctx;
    f->n++;
    size_t l = strlen(f->text);
    snprintf(f->text + l, sizeof f->text - l, "%s\n", msg);
}

static struct findings check_of(struct rm_model *m)
{
    struct findings f = {0, ""};
    struct rm_graph g;
    struct rm_error err;
    ck_assert_int_eq(rm_graph_init(&g, m, &err), 0);
    rm_findings found = {0};
    int n = rm_check_model(&g, &found);
    for (size_t i = 0; i < found.n; i++)
        collect(&f, found.v[i].text);
    rm_findings_free(&found);
    ck_assert_int_eq(n, f.n);
    rm_graph_free(&g);
    return f;
}

START_TEST(check_clean)
{
    struct rm_model *m = rm_test_load_model(models[_i]);
    struct findings f = check_of(m);
    ck_assert_msg(f.n == 0, "%s: %s", models[_i], f.text);
    rm_model_free(m);
}
END_TEST

START_TEST(check_dangling_input)
{
    struct rm_model *m = rm_test_load_model("tiny_resnet");
    Onnx__NodeProto *n = m->proto->graph->node[3];
    n->input[0] = "no_such_tensor";
    struct findings f = check_of(m);
    ck_assert_int_eq(f.n, 1);
    ck_assert_msg(strstr(f.text, "no_such_tensor") && strstr(f.text, "not produced"), "%s", f.text);
    ck_assert_msg(strstr(f.text, n->name) != NULL, "finding does not name the node: %s", f.text);
    rm_model_free(m);
}
END_TEST

START_TEST(check_unsorted)
{
    struct rm_model *m = rm_test_load_model("concat_net");
    Onnx__GraphProto *g = m->proto->graph;
    Onnx__NodeProto *t = g->node[0];
    g->node[0] = g->node[1];
    g->node[1] = t;
    struct findings f = check_of(m);
    ck_assert_msg(f.n >= 1 && strstr(f.text, "topologically"), "%s", f.text);
    rm_model_free(m);
}
END_TEST

START_TEST(check_duplicates)
{
    struct rm_model *m = rm_test_load_model("se_net");
    Onnx__GraphProto *g = m->proto->graph;
    g->initializer[1]->name = g->initializer[0]->name;
    g->node[2]->name = g->node[1]->name;
    g->node[2]->output[0] = g->node[1]->output[0];
    struct findings f = check_of(m);
    ck_assert_msg(strstr(f.text, "duplicate initializer"), "%s", f.text);
    ck_assert_msg(strstr(f.text, "duplicate node"), "%s", f.text);
    ck_assert_msg(strstr(f.text, "already produced"), "%s", f.text);
    rm_model_free(m);
}
END_TEST

START_TEST(check_bad_tensor_sizes)
{
    struct rm_model *m = rm_test_load_model("tiny_resnet");
    Onnx__GraphProto *g = m->proto->graph;
    g->initializer[0]->raw_data.len -= 4; /* one float short */
    static int64_t huge[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    g->initializer[1]->dims = huge; /* product overflows int64 */
    g->initializer[1]->n_dims = 2;
    struct findings f = check_of(m);
    ck_assert_int_eq(f.n, 2);
    ck_assert_msg(strstr(f.text, g->initializer[0]->name) && strstr(f.text, "raw_data"), "%s", f.text);
    ck_assert_msg(strstr(f.text, g->initializer[1]->name) && strstr(f.text, "overflow"), "%s", f.text);
    rm_model_free(m);
}
END_TEST

START_TEST(check_missing_opset)
{
    struct rm_model *m = rm_test_load_model("se_net");
    m->proto->n_opset_import = 0;
    struct findings f = check_of(m);
    ck_assert_msg(f.n == 1 && strstr(f.text, "opset"), "%s", f.text);
    rm_model_free(m);
}
END_TEST

/* ---- atomic save ------------------------------------------------------------ */

START_TEST(save_unwritable_dir)
{
    /* a folder that does not exist, not one without write permission: root (as in CI)
     * ignores permissions */
    struct rm_model *m = rm_test_load_model("se_net");
    struct rm_error err;
    ck_assert_int_eq(rm_model_save(m, "/nonexistent-dir/out.onnx", NULL, &err), RM_EIO);
    ck_assert(strstr(err.msg, "/nonexistent-dir/out.onnx") != NULL);
    char *dir = tmpdir();
    ck_assert_int_eq(rm_model_save(m, dir, NULL, &err), RM_EIO); /* a directory */
    ck_assert_int_eq(count_files(dir), 0);
    rmdir(dir);
    free(dir);
    rm_model_free(m);
}
END_TEST

/* Saving over the file a model was loaded from keeps a complete file at every moment
 * and ends with the new content. */
START_TEST(save_over_input)
{
    char *dir = tmpdir(), *a, path[1024];
    size_t n;
    struct rm_error err;
    struct rm_model *m = load_copy("se_net", dir, path, sizeof path, &a, &n);
    m->proto->producer_name = "edited";
    ck_assert_int_eq(rm_model_save(m, path, NULL, &err), 0);
    rm_model_free(m);
    ck_assert_int_eq(rm_model_load(&m, path, NULL, &err), 0);
    ck_assert_str_eq(m->proto->producer_name, "edited");
    rm_model_free(m);
    ck_assert_int_eq(count_files(dir), 1);
    unlink(path);
    rmdir(dir);
    free(dir);
    free(a);
}
END_TEST


/* ---- external data ---------------------------------------------------------- */

/* inline -> external -> inline gives back the original bytes, and the external file
 * has its tensors at 4096-aligned offsets. */
START_TEST(extdata_round_trip)
{
    char *dir = tmpdir();
    char src[1024], ext[1024], back[1024], data[1024];
    snprintf(src, sizeof src, "%s/tiny_resnet.onnx", rm_test_testdata());
    snprintf(ext, sizeof ext, "%s/m.onnx", dir);
    snprintf(back, sizeof back, "%s/back.onnx", dir);
    snprintf(data, sizeof data, "%s/w.bin", dir);
    struct rm_error err;
    struct rm_model *m;
    ck_assert_int_eq(rm_model_load(&m, src, NULL, &err), 0);
    struct rm_save_options so = {.external_data = "w.bin"};
    ck_assert_msg(rm_model_save(m, ext, &so, &err) == 0, "%s", err.msg);
    rm_model_free(m);
    ck_assert_msg(rm_model_load(&m, ext, NULL, &err) == 0, "%s", err.msg);
    ck_assert(m->ext != NULL);
    ck_assert_int_eq(check_of(m).n, 0);
    ck_assert_int_eq(rm_model_save(m, back, NULL, &err), 0);
    rm_model_free(m);
    size_t na, nb;
    char *a = rm_test_read_file(src, &na), *b = rm_test_read_file(back, &nb);
    ck_assert(na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
    /* every external tensor starts on a 4096 boundary */
    char *mb = rm_test_read_file(ext, &nb);
    Onnx__ModelProto *raw = onnx__model_proto__unpack(NULL, nb, (const uint8_t *)mb);
    ck_assert(raw != NULL);
    int n_ext = 0;
    for (size_t i = 0; i < raw->graph->n_initializer; i++) {
        const Onnx__TensorProto *t = raw->graph->initializer[i];
        if (!t->has_data_location)
            continue;
        n_ext++;
        ck_assert_str_eq(t->external_data[1]->key, "offset");
        ck_assert_int_eq(atoll(t->external_data[1]->value) % 4096, 0);
    }
    ck_assert_int_gt(n_ext, 3);
    onnx__model_proto__free_unpacked(raw, NULL);
    /* from memory there is no folder to read it from: refused */
    struct rm_model *mm;
    ck_assert_int_eq(rm_model_load_buffer(&mm, mb, nb, "m", NULL, &err), RM_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "folder") != NULL, "%s", err.msg);
    free(mb);
    unlink(ext);
    unlink(back);
    unlink(data);
    rmdir(dir);
    free(dir);
}
END_TEST

/* A model never writes over the files it reads: its external data (by any spelling of
 * the path), nor a data file over itself or over the output. */
START_TEST(extdata_never_overwrites_its_source)
{
    char *dir = tmpdir();
    char src[1024], ext[1024], data[1024], out[1024], dotted[1200];
    snprintf(src, sizeof src, "%s/tiny_resnet.onnx", rm_test_testdata());
    snprintf(ext, sizeof ext, "%s/m.onnx", dir);
    snprintf(data, sizeof data, "%s/w.bin", dir);
    snprintf(out, sizeof out, "%s/b.onnx", dir);
    snprintf(dotted, sizeof dotted, "%s/./w.bin", dir);
    struct rm_error err;
    struct rm_model *m;
    ck_assert_int_eq(rm_model_load(&m, src, NULL, &err), 0);
    struct rm_save_options so = {.external_data = "w.bin"};
    ck_assert_msg(rm_model_save(m, ext, &so, &err) == 0, "%s", err.msg);
    rm_model_free(m);
    size_t n;
    char *before = rm_test_read_file(data, &n);
    ck_assert_msg(rm_model_load(&m, ext, NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rm_model_save(m, out, &so, &err), RM_EUSAGE); /* its own data file */
    ck_assert_msg(strstr(err.msg, "w.bin") && strstr(err.msg, "m.onnx"), "%s", err.msg);
    ck_assert_int_eq(rm_model_save(m, dotted, NULL, &err), RM_EUSAGE); /* the model over its data */
    so.external_data = "m.onnx"; /* the data over the model being read */
    ck_assert_int_eq(rm_model_save(m, out, &so, &err), RM_EUSAGE);
    ck_assert_msg(strstr(err.msg, "model being read"), "%s", err.msg);
    so.external_data = "b.onnx"; /* the data over the output */
    ck_assert_int_eq(rm_model_save(m, out, &so, &err), RM_EUSAGE);
    ck_assert_msg(strstr(err.msg, "same file as the output"), "%s", err.msg); /* library terms: no CLI flag */
    rm_model_free(m);
    size_t n2;
    char *after = rm_test_read_file(data, &n2);
    ck_assert(n == n2 && memcmp(before, after, n) == 0);
    ck_assert_int_eq(count_files(dir), 2);
    free(before);
    free(after);
    unlink(ext);
    unlink(data);
    rmdir(dir);
    free(dir);
}
END_TEST

/* Write se_net into dir as m.onnx with its first initializer pointing at external data
 * described by the given key/value pairs (NULL value: key left out). */
static void write_hostile(const char *dir, const char *loc, const char *off, const char *len)
{
    struct rm_model *m = rm_test_load_model("se_net");
    Onnx__TensorProto *t = m->proto->graph->initializer[0];
    static Onnx__StringStringEntryProto e[3];
    static Onnx__StringStringEntryProto *ep[3];
    const char *keys[3] = {"location", "offset", "length"};
    const char *vals[3] = {loc, off, len};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        onnx__string_string_entry_proto__init(&e[n]);
        e[n].key = (char *)keys[i];
        e[n].value = (char *)vals[i];
        ep[n] = &e[n];
        n++;
    }
    t->has_raw_data = 0;
    t->external_data = ep;
    t->n_external_data = n;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    char path[2048];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    struct rm_error err;
    ck_assert_int_eq(rm_model_save(m, path, NULL, &err), 0);
    rm_model_free(m);
}

static void expect_load_error(const char *dir, int code, const char *needle)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    struct rm_error err;
    rm_error_clear(&err);
    struct rm_model *m;
    int rc = rm_model_load(&m, path, NULL, &err);
    ck_assert_msg(rc == code, "rc %d (%s), expected %d", rc, err.msg, code);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "expected '%s' in: %s", needle, err.msg);
    ck_assert_msg(strstr(err.msg, "m.onnx") != NULL, "message does not name the model: %s", err.msg);
}

START_TEST(extdata_hostile)
{
    char *dir = tmpdir();
    char sub[512], f[1024], outside[1024];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(f, sizeof f, "%s/w.bin", sub);
    static char bytes[1000];
    write_file(f, bytes, sizeof bytes);
    snprintf(outside, sizeof outside, "%s/secret.bin", dir);
    write_file(outside, bytes, sizeof bytes);
    snprintf(f, sizeof f, "%s/link.bin", sub);
    ck_assert_int_eq(symlink(outside, f), 0);

    write_hostile(sub, "/etc/passwd", NULL, NULL);
    expect_load_error(sub, RM_EUNSUPPORTED, "absolute");
    write_hostile(sub, "../secret.bin", NULL, NULL);
    expect_load_error(sub, RM_EUNSUPPORTED, "'..'");
    write_hostile(sub, "link.bin", NULL, NULL);
    expect_load_error(sub, RM_EUNSUPPORTED, "outside the model's folder");
    write_hostile(sub, "missing.bin", NULL, NULL);
    expect_load_error(sub, RM_EIO, "cannot open");
    write_hostile(sub, "w.bin", "2000", NULL);
    expect_load_error(sub, RM_EFORMAT, "beyond");
    write_hostile(sub, "w.bin", "996", "8");
    expect_load_error(sub, RM_EFORMAT, "beyond");
    write_hostile(sub, "w.bin", "18446744073709551615", "18446744073709551615");
    expect_load_error(sub, RM_EFORMAT, "beyond");
    write_hostile(sub, "w.bin", "-4", NULL);
    expect_load_error(sub, RM_EFORMAT, "not a number");
    write_hostile(sub, "w.bin", "0", "1e3");
    expect_load_error(sub, RM_EFORMAT, "not a number");
    write_hostile(sub, NULL, "0", "8");
    expect_load_error(sub, RM_EFORMAT, "without a location");

    /* in bounds but the wrong size for the tensor: loads, and check reports it */
    write_hostile(sub, "w.bin", "0", "12");
    char path[2048];
    snprintf(path, sizeof path, "%s/m.onnx", sub);
    struct rm_error err;
    struct rm_model *m;
    ck_assert_msg(rm_model_load(&m, path, NULL, &err) == 0, "%s", err.msg);
    struct findings fs = check_of(m);
    ck_assert_msg(fs.n == 1 && strstr(fs.text, "raw_data"), "%s", fs.text);
    rm_model_free(m);

    unlink(path);
    unlink(f);
    snprintf(f, sizeof f, "%s/w.bin", sub);
    unlink(f);
    unlink(outside);
    rmdir(sub);
    rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(extdata_bad_name)
{
    struct rm_model *m = rm_test_load_model("se_net");
    struct rm_error err;
    struct rm_save_options so = {.external_data = "../x.bin"};
    ck_assert_int_eq(rm_model_save(m, "/tmp/never-written.onnx", &so, &err), RM_EUSAGE);
    so.external_data = "never-written.onnx";
    ck_assert_int_eq(rm_model_save(m, "/tmp/never-written.onnx", &so, &err), RM_EUSAGE);
    ck_assert_int_eq(access("/tmp/never-written.onnx", F_OK), -1);
    rm_model_free(m);
}
END_TEST

/* A full disk in the middle of a save (simulated with RLIMIT_FSIZE, which makes
 * write(2) fail with EFBIG): error, no partial or temporary file, input untouched. */
START_TEST(save_disk_full)
{
    char *dir = tmpdir(), *a, path[1024], out[1024];
    size_t n;
    struct rm_error err;
    struct rm_model *m = load_copy("tiny_resnet", dir, path, sizeof path, &a, &n);
    snprintf(out, sizeof out, "%s/out.onnx", dir);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {.rlim_cur = 16384, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ck_assert_int_eq(rm_model_save(m, out, NULL, &err), RM_EIO);
    ck_assert_msg(strstr(err.msg, "out.onnx") && strstr(err.msg, "cannot write"), "%s", err.msg);
    ck_assert_int_eq(rm_model_save(m, path, NULL, &err), RM_EIO);
    struct rm_save_options so = {.external_data = "w.bin"};
    ck_assert_int_eq(rm_model_save(m, out, &so, &err), RM_EIO);
    lim.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &lim);
    rm_model_free(m);
    ck_assert_int_eq(count_files(dir), 1);
    size_t nb;
    char *b = rm_test_read_file(path, &nb);
    ck_assert(nb == n && memcmp(a, b, n) == 0);
    free(a);
    free(b);
    unlink(path);
    rmdir(dir);
    free(dir);
}
END_TEST


/* ---- input shapes ------------------------------------------------------------------- */

/* Make graph input 0's dims d (a bit per dim) symbolic, named from names. */
static void make_dynamic(struct rm_model *m, unsigned d, const char *const *names)
{
    Onnx__TensorShapeProto *sh = m->proto->graph->input[0]->type->tensor_type->shape;
    for (size_t k = 0; k < sh->n_dim; k++)
        if (d & (1u << k)) {
            sh->dim[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            sh->dim[k]->dim_param = (char *)names[k];
        }
    rm_model_touch(m);
}

static const char *const dim_names[] = {"batch", "channels", "height", "width"};

/* Resident kilobytes of the mapping that contains p (/proc/self/smaps), -1 if none. */
static long mapping_rss_kb(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    long rss = -1;
    int in = 0;
    ck_assert(f != NULL);
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (in && !strncmp(line, "Rss:", 4))
            rss = strtol(line + 4, NULL, 10), in = 0;
    }
    fclose(f);
    return rss;
}

/* What an edit read in place from the model file stays resident until dropped: a
 * verification drops it before building each plan (densenet121's prune carried 27 MB of
 * its file into the original's plan build). Dropped pages read back unchanged. */
START_TEST(mapped_pages_drop_and_read_back)
{
    struct rm_model *m = rm_test_load_model("resnet18");
    const Onnx__GraphProto *g = m->proto->graph;
    uint64_t sum = 0, again = 0;
    ck_assert(m->map != NULL && m->map_size > 40u << 20);
    for (size_t i = 0; i < g->n_initializer; i++)
        for (size_t k = 0; k < g->initializer[i]->raw_data.len; k++)
            sum += g->initializer[i]->raw_data.data[k] * (k % 251 + 1);
    long before = mapping_rss_kb(m->map);
    ck_assert_msg(before > 40 << 10, "%ld KB of the file resident after reading every weight", before);
    rm_fs_maps_drop();
    long after = mapping_rss_kb(m->map);
    ck_assert_msg(after >= 0 && after < 1024, "%ld KB of the file still resident after the drop", after);
    for (size_t i = 0; i < g->n_initializer; i++)
        for (size_t k = 0; k < g->initializer[i]->raw_data.len; k++)
            again += g->initializer[i]->raw_data.data[k] * (k % 251 + 1);
    ck_assert(again == sum);
    rm_model_free(m);
}
END_TEST

/* Bytes past a mapping's end are not in its file: the check once subtracted the pointer
 * from the end unsigned, so a tensor an edit allocated above a model's mapping was "found"
 * at an offset past the file's end, copy_file_range copied nothing, and the save wrote
 * every later tensor from memory (VGG16's prune). */
START_TEST(map_source_only_inside)
{
    struct rm_model *m = rm_test_load_model("resnet18");
    const uint8_t *base = m->map;
    size_t size = m->map_size;
    int fd;
    uint64_t off;
    ck_assert(base != NULL && size > 4096);
    ck_assert_int_eq(rm_fs_map_source(base + 100, 50, &fd, &off), 0);
    ck_assert(off == 100 && fd >= 0);
    ck_assert_int_eq(rm_fs_map_source(base + size - 8, 8, &fd, &off), 0);
    ck_assert(off == size - 8);
    ck_assert_int_eq(rm_fs_map_source(base + size - 8, 9, &fd, &off), -1); /* runs past the end */
    ck_assert_int_eq(rm_fs_map_source(base + size, 1, &fd, &off), -1);
    ck_assert_int_eq(rm_fs_map_source(base + size + 38602, 197100, &fd, &off), -1);
    ck_assert_int_eq(rm_fs_map_source(base - 1, 1, &fd, &off), -1);
    rm_model_free(m);
}
END_TEST

/* A float tensor read where int64 is taken saturates (NaN: 0): the C conversion of an
 * out-of-range float is undefined, and fuzzing found a model holding 3.4e38 there
 * (tests/fuzz-regressions/tensor-float-read-as-int64-out-of-range.onnx; x86 gave INT64_MIN). */
START_TEST(float_read_as_int64_saturates)
{
    const float v[5] = {3.4e38f, -3.4e38f, NAN, -7.9f, 1e10f};
    const double dv[2] = {1e300, -2.5};
    int64_t got[5];
    struct rm_error err;
    int64_t dims[1] = {5};
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t.n_dims = 1;
    t.dims = dims;
    t.has_raw_data = 1;
    t.raw_data.data = (uint8_t *)v;
    t.raw_data.len = sizeof v;
    ck_assert_msg(rm_tensor_to_i64(&t, got, 5, &err) == 0, "%s", err.msg);
    ck_assert(got[0] == INT64_MAX && got[1] == INT64_MIN && got[2] == 0 && got[3] == -7 && got[4] == 10000000000);
    Onnx__TensorProto u = ONNX__TENSOR_PROTO__INIT;
    dims[0] = 2;
    u.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    u.n_dims = 1;
    u.dims = dims;
    u.n_double_data = 2;
    u.double_data = (double *)dv;
    ck_assert_msg(rm_tensor_to_i64(&u, got, 2, &err) == 0, "%s", err.msg);
    ck_assert(got[0] == INT64_MAX && got[1] == -2);
}
END_TEST

START_TEST(dynamic_hw_needs_a_shape)
{
    /* an input with dynamic height and width is not run, edited or counted at 1x1 */
    rm_model *ref = rm_test_load_model("tiny_resnet");
    rm_info ri;
    rm_error err;
    ck_assert_int_eq(rm_model_info(ref, &ri, &err), 0);
    ck_assert_int_gt(ri.macs, 0);
    rm_model *m = rm_test_load_model("tiny_resnet");
    make_dynamic(m, 0xD, dim_names);
    const char *in = m->proto->graph->input[0]->name;
    int batch = -1;
    ck_assert_int_eq(rm_model_check_inputs(m, &batch, &err), RM_EUSAGE);
    ck_assert_int_eq(err.fix, RM_FIX_INPUT_SHAPE);
    ck_assert_msg(strstr(err.msg, "height, width are not known") && strstr(err.msg, in), "%s", err.msg);
    rm_info info;
    ck_assert_int_eq(rm_model_info(m, &info, &err), 0);
    ck_assert_int_eq(info.macs, -1);
    rm_info_free(&info);
    rm_session *s = NULL;
    ck_assert_int_eq(rm_session_create(&s, m, NULL, &err), RM_EUSAGE);
    ck_assert_ptr_null(s);
    rm_prune_options po = {0};
    po.ratio = 0.25;
    po.global = true;
    rm_findings log = {0};
    ck_assert_int_eq(rm_prune(m, NULL, 0, &po, NULL, &log, &err), RM_EUSAGE);
    ck_assert_int_eq(err.fix, RM_FIX_INPUT_SHAPE);
    rm_findings_free(&log);

    /* declared sizes must agree; dynamic ones take what is given */
    rm_value_info decl = ri.inputs[0];
    int64_t dims[RM_MAX_RANK];
    memcpy(dims, decl.dims, sizeof dims);
    dims[1] += 1;
    ck_assert_int_eq(rm_model_set_input_shape(m, in, decl.rank, dims, &err), RM_EUSAGE);
    ck_assert_msg(strstr(err.msg, "declared"), "%s", err.msg);
    dims[1] -= 1;
    ck_assert_int_eq(rm_model_set_input_shape(m, in, decl.rank - 1, dims, &err), RM_EUSAGE);
    ck_assert_int_eq(rm_model_set_input_shape(m, in, decl.rank, dims, &err), 0);
    ck_assert_int_eq(rm_model_check_inputs(m, &batch, &err), 0);
    ck_assert_int_eq(batch, 0);
    ck_assert_int_eq(rm_model_info(m, &info, &err), 0);
    ck_assert_int_eq(info.macs, ri.macs); /* the same sizes as the static model declares */
    rm_info_free(&info);
    ck_assert_int_eq(rm_session_create(&s, m, NULL, &err), 0);
    rm_session_free(s);
    rm_info_free(&ri);
    rm_model_free(m);
    rm_model_free(ref);
}
END_TEST

START_TEST(dynamic_batch_alone_is_one)
{
    rm_model *m = rm_test_load_model("tiny_resnet");
    make_dynamic(m, 0x1, dim_names);
    rm_error err;
    int batch = 0;
    ck_assert_int_eq(rm_model_check_inputs(m, &batch, &err), 0);
    ck_assert_int_eq(batch, 1);
    rm_info info;
    ck_assert_int_eq(rm_model_info(m, &info, &err), 0);
    ck_assert_int_gt(info.macs, 0);
    rm_info_free(&info);
    rm_session *s = NULL;
    ck_assert_int_eq(rm_session_create(&s, m, NULL, &err), 0);
    rm_tensor t;
    rm_session_input_info(s, 0, &t);
    ck_assert_int_eq(t.dims[0], 1);
    rm_session_free(s);
    rm_model_free(m);
}
END_TEST

START_TEST(session_keeps_the_models_input_shapes)
{
    /* sessions take the shapes set on the model for the inputs they are not given (they
     * used to replace them with none) */
    rm_model *m = rm_test_load_model("tiny_resnet");
    make_dynamic(m, 0xD, dim_names);
    rm_info info;
    rm_error err;
    ck_assert_int_eq(rm_model_info(m, &info, &err), 0);
    int64_t dims[RM_MAX_RANK];
    memcpy(dims, info.inputs[0].dims, sizeof dims);
    dims[0] = 2;
    dims[2] = dims[3] = 40;
    ck_assert_int_eq(rm_model_set_input_shape(m, info.inputs[0].name, info.inputs[0].rank, dims, &err), 0);
    rm_session *s = NULL;
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(rm_session_create(&s, m, NULL, &err), 0);
        rm_tensor t;
        rm_session_input_info(s, 0, &t);
        ck_assert_int_eq(t.dims[0], 2);
        ck_assert_int_eq(t.dims[2], 40);
        ck_assert_int_eq(t.dims[3], 40);
        rm_session_free(s);
    }
    rm_info_free(&info);
    rm_model_free(m);
}
END_TEST

START_TEST(rewrite_input_shape)
{
    /* the declaration changes, and the outputs' fixed sizes follow */
    rm_model *m = rm_test_load_model("tiny_resnet");
    rm_info info;
    rm_error err;
    ck_assert_int_eq(rm_model_info(m, &info, &err), 0);
    int64_t dims[RM_MAX_RANK];
    memcpy(dims, info.inputs[0].dims, sizeof dims);
    dims[0] = 3;
    ck_assert_int_eq(rm_model_rewrite_input_shape(m, info.inputs[0].name, info.inputs[0].rank, dims, &err), 0);
    char dir[] = "/tmp/rm_rewrite_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    ck_assert_int_eq(rm_model_save(m, path, NULL, &err), 0);
    rm_model *back = NULL;
    ck_assert_int_eq(rm_model_load(&back, path, NULL, &err), 0);
    rm_info bi;
    ck_assert_int_eq(rm_model_info(back, &bi, &err), 0);
    ck_assert_int_eq(bi.inputs[0].dims[0], 3);
    ck_assert_int_eq(bi.outputs[0].dims[0], 3);
    ck_assert_int_eq(bi.macs, 3 * info.macs);
    rm_info_free(&bi);
    rm_info_free(&info);
    rm_model_free(back);
    rm_model_free(m);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("model");
    TCase *t = tcase_create("io");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, round_trip_identical, 0, N_MODELS);
    tcase_add_test(t, round_trip_unknown_field);
    tcase_add_test(t, empty_file);
    tcase_add_test(t, error_messages_are_one_line);
    tcase_add_test(t, missing_file);
    tcase_add_test(t, truncated_everywhere);
    tcase_add_test(t, random_garbage);
    tcase_add_test(t, length_past_end);
    tcase_add_test(t, deep_nesting);
    tcase_add_test(t, memory_limit);
    tcase_add_test(t, save_unwritable_dir);
    tcase_add_test(t, save_over_input);
    tcase_add_test(t, save_disk_full);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("check");
    tcase_add_loop_test(c, check_clean, 0, N_MODELS);
    tcase_add_test(c, check_dangling_input);
    tcase_add_test(c, check_unsorted);
    tcase_add_test(c, check_duplicates);
    tcase_add_test(c, check_bad_tensor_sizes);
    tcase_add_test(c, check_missing_opset);
    suite_add_tcase(s, c);
    TCase *x = tcase_create("extdata");
    tcase_add_test(x, extdata_round_trip);
    tcase_add_test(x, extdata_hostile);
    tcase_add_test(x, extdata_bad_name);
    tcase_add_test(x, extdata_never_overwrites_its_source);
    TCase *sh = tcase_create("input_shapes");
    tcase_set_timeout(sh, 60);
    tcase_add_test(x, mapped_pages_drop_and_read_back);
    tcase_add_test(x, map_source_only_inside);
    tcase_add_test(x, float_read_as_int64_saturates);
    tcase_add_test(sh, dynamic_hw_needs_a_shape);
    tcase_add_test(sh, dynamic_batch_alone_is_one);
    tcase_add_test(sh, session_keeps_the_models_input_shapes);
    tcase_add_test(sh, rewrite_input_shape);
    suite_add_tcase(s, sh);
    suite_add_tcase(s, x);
    return s;
}

int main(void)
{
    return rm_test_run(suite());
}
