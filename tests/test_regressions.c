/* Replays every input in tests/fuzz-regressions/ (inputs on which fuzz/run.sh once found
 * a crash, or hostile models made by hand) through both fuzzing pipelines: the byte-level
 * one (load to run) and the structure-aware one (every edit too). The assertion is that
 * each one finishes: under AddressSanitizer and UBSan (scripts/test.sh) a memory error or
 * undefined behaviour aborts the test. */
#include "../fuzz/fuzz_pipeline.h"
#include "test_util.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir(void)
{
    const char *d = getenv("RM_REGRESSIONS");
    return d ? d : "tests/fuzz-regressions";
}

START_TEST(replay_all)
{
    DIR *d = opendir(dir());
    ck_assert_msg(d != NULL, "cannot open %s", dir());
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir(), e->d_name);
        size_t size;
        uint8_t *buf = (uint8_t *)rm_test_read_file(path, &size);
        ck_assert_int_eq(rm_fuzz_one(buf, size), 0);
        ck_assert_int_eq(rm_fuzz_edit_one(buf, size), 0);
        free(buf);
        n++;
    }
    closedir(d);
    ck_assert_int_gt(n, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("regressions");
    TCase *t = tcase_create("fuzz");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, replay_all);
    suite_add_tcase(s, t);
    return rm_test_run(s);
}
