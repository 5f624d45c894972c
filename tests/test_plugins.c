/* Plugin host: discovery, ABI checks and the trust rule, using the real
 * plugins and the broken ones built only for the tests (tests/plugins/). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_host.h"
#include "testutil.h"
#include "tokvox/tokvox.h"

static char detail[2048];

static void use_test_plugins(void)
{
    const char *dir = getenv("TOKVOX_TEST_PLUGIN_DIR");
    ck_assert_msg(dir, "TOKVOX_TEST_PLUGIN_DIR is not set (run through meson test)");
    setenv("TOKVOX_PLUGIN_PATH", dir, 1);
}

static int load(const char *name, int kind)
{
    tk_plugin p;
    detail[0] = '\0';
    int err = tk_plugin_load(name, kind, &p, detail, sizeof detail);
    if (!err)
        tk_plugin_close(&p);
    return err;
}

START_TEST(real_plugins_load)
{
    tk_plugin p;
    ck_assert_int_eq(tk_plugin_load("grvq", TOKVOX_PLUGIN_QUANTIZER, &p, detail, sizeof detail),
                     TOKVOX_OK);
    ck_assert_str_eq(p.desc.name, "grvq");
    ck_assert_int_eq(p.entry.abi_major, TOKVOX_PLUGIN_ABI_MAJOR);
    ck_assert_ptr_eq(p.desc.api, &p.api);
    ck_assert_ptr_nonnull(p.api.quantizer.encode);
    tk_plugin_close(&p);
    ck_assert_int_eq(load("rvq", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_OK);
    ck_assert_int_eq(load("stftcodec", TOKVOX_PLUGIN_MODEL), TOKVOX_OK);
}
END_TEST

/* rvq and grvq are two plugins of one object (the factory hands out both). */
START_TEST(one_object_many_plugins)
{
    tk_plugin p;
    ck_assert_int_eq(tk_plugin_open(tu_build_path("plugins/tokvox_vq.so"), &p, detail,
                                    sizeof detail),
                     TOKVOX_OK);
    ck_assert_uint_eq(tk_plugin_count(&p), 2);
    int seen = 0;
    for (uint32_t i = 0; i < 2; i++) {
        ck_assert_int_eq(tk_plugin_select(&p, i, detail, sizeof detail), TOKVOX_OK);
        ck_assert_int_eq(p.desc.kind, TOKVOX_PLUGIN_QUANTIZER);
        seen |= !strcmp(p.desc.name, "rvq") ? 1 : !strcmp(p.desc.name, "grvq") ? 2 : 0;
    }
    ck_assert_int_eq(seen, 3);
    ck_assert_int_eq(tk_plugin_select(&p, 2, detail, sizeof detail), TOKVOX_ERR_PLUGIN_INVALID);
    tk_plugin_close(&p);
}
END_TEST

/* A model plugin built against ABI 2.0 (its API table ends before the 2.1
 * framing field): it loads, and the host sees framing as absent, not as
 * whatever lies past the plugin's table. */
START_TEST(previous_minor_loads)
{
    use_test_plugins();
    tk_plugin p;
    ck_assert_int_eq(
        tk_plugin_load("older_minor", TOKVOX_PLUGIN_MODEL, &p, detail, sizeof detail),
        TOKVOX_OK);
    ck_assert_int_eq(p.entry.abi_major, 2);
    ck_assert_int_eq(p.entry.abi_minor, 0);
    ck_assert_uint_lt(p.api.model.size, sizeof(tokvox_model_api));
    ck_assert_ptr_null(p.api.model.framing);
    ck_assert_ptr_nonnull(p.api.model.decode);
    tk_plugin_close(&p);
}
END_TEST

/* A stale object named for a plugin (an ABI 1 leftover) beside the object
 * that now holds it does not shadow it; alone in its folder, it is the
 * answer, with its error. */
START_TEST(stale_object_beside_its_replacement)
{
    const char *dir = tu_temp_dir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp %s/tokvox_abi1.so %s/tokvox_grvq.so",
             getenv("TOKVOX_TEST_PLUGIN_DIR"), dir);
    ck_assert_int_eq(system(cmd), 0);
    setenv("TOKVOX_PLUGIN_PATH", dir, 1);
    ck_assert_int_eq(load("grvq", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_ERR_PLUGIN_ABI);
    ck_assert_ptr_nonnull(strstr(detail, "tokvox_grvq.so"));
    snprintf(cmd, sizeof cmd, "cp %s %s/", tu_build_path("plugins/tokvox_vq.so"), dir);
    ck_assert_int_eq(system(cmd), 0);
    tk_plugin p;
    ck_assert_int_eq(tk_plugin_load("grvq", TOKVOX_PLUGIN_QUANTIZER, &p, detail, sizeof detail),
                     TOKVOX_OK);
    ck_assert_ptr_nonnull(strstr(p.path, dir));
    tk_plugin_close(&p);
}
END_TEST

START_TEST(abi1_plugin_is_refused_saying_why)
{
    use_test_plugins();
    ck_assert_int_eq(load("abi1", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_ERR_PLUGIN_ABI);
    ck_assert_ptr_nonnull(strstr(detail, "tokvox_abi1.so"));
    ck_assert_msg(strstr(detail, "plugin ABI 1.1") && strstr(detail, "no longer loaded") &&
                      strstr(detail, "rebuild"),
                  "message does not say why: %s", detail);
}
END_TEST

START_TEST(wrong_kind_is_refused)
{
    ck_assert_int_eq(load("grvq", TOKVOX_PLUGIN_MODEL), TOKVOX_ERR_PLUGIN_INVALID);
    ck_assert_ptr_nonnull(strstr(detail, "tokvox_vq.so"));
    ck_assert_ptr_nonnull(strstr(detail, "another kind"));
}
END_TEST

START_TEST(wrong_abi_major_names_file_and_versions)
{
    use_test_plugins();
    ck_assert_int_eq(load("bad_abi", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_ERR_PLUGIN_ABI);
    ck_assert_ptr_nonnull(strstr(detail, "tokvox_bad_abi.so"));
    char versions[64];
    snprintf(versions, sizeof versions, "plugin ABI %d.0, host ABI %d.%d",
             TOKVOX_PLUGIN_ABI_MAJOR + 1, TOKVOX_PLUGIN_ABI_MAJOR, TOKVOX_PLUGIN_ABI_MINOR);
    ck_assert_msg(strstr(detail, versions), "message lacks versions: %s", detail);
}
END_TEST

/* ABI 2 reads only what it knows of larger structs: a newer minor loads. */
START_TEST(newer_minor_loads)
{
    use_test_plugins();
    tk_plugin p;
    ck_assert_int_eq(
        tk_plugin_load("newer_minor", TOKVOX_PLUGIN_QUANTIZER, &p, detail, sizeof detail),
        TOKVOX_OK);
    ck_assert_int_eq(p.entry.abi_minor, TOKVOX_PLUGIN_ABI_MINOR + 1);
    ck_assert_uint_eq(p.api.quantizer.size, sizeof(tokvox_quantizer_api));
    ck_assert_uint_eq(p.desc.size, sizeof(tokvox_plugin_descriptor));
    ck_assert_ptr_nonnull(p.api.quantizer.decode);
    tk_plugin_close(&p);
}
END_TEST

START_TEST(missing_entry_symbol_is_refused)
{
    use_test_plugins();
    ck_assert_int_eq(load("no_entry", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_ERR_PLUGIN_INVALID);
    ck_assert_ptr_nonnull(strstr(detail, "tokvox_no_entry.so"));
    ck_assert_ptr_nonnull(strstr(detail, TOKVOX_PLUGIN_ENTRY_SYMBOL));
}
END_TEST

START_TEST(not_a_shared_object_is_refused)
{
    use_test_plugins();
    ck_assert_int_eq(load("not_elf", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_ERR_PLUGIN_INVALID);
    ck_assert_ptr_nonnull(strstr(detail, "tokvox_not_elf.so"));
}
END_TEST

START_TEST(missing_plugin_lists_search_path)
{
    ck_assert_int_eq(load("nonexistent", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_ERR_PLUGIN_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(detail, "nonexistent"));
    ck_assert_ptr_nonnull(strstr(detail, "searched"));
}
END_TEST

START_TEST(names_cannot_be_paths)
{
    const char *bad[] = {"../grvq", "/tmp/x", "a/b", "..", "", "GRVQ", "grvq.so",
                         "a_name_that_is_far_too_long_to_be_a_plugin"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!tk_plugin_name_ok(bad[i]), "accepted '%s'", bad[i]);
        ck_assert_int_eq(load(bad[i], TOKVOX_PLUGIN_QUANTIZER), TOKVOX_ERR_PLUGIN_NOT_FOUND);
    }
    ck_assert(tk_plugin_name_ok("grvq"));
    ck_assert(tk_plugin_name_ok("my_vq2"));
}
END_TEST

START_TEST(current_directory_is_not_searched)
{
    /* a valid plugin copied into the working directory must not be found
     * when TOKVOX_PLUGIN_PATH does not name that directory */
    const char *dir = tu_temp_dir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp %s/tokvox_fails_create.so %s/tokvox_anyname.so",
             getenv("TOKVOX_TEST_PLUGIN_DIR"), dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(chdir(dir), 0);
    unsetenv("TOKVOX_PLUGIN_PATH");
    ck_assert_int_eq(load("fails_create", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_ERR_PLUGIN_NOT_FOUND);
    /* named explicitly, it is found, in an object of another name */
    setenv("TOKVOX_PLUGIN_PATH", ".", 1);
    ck_assert_int_eq(load("fails_create", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_OK);
}
END_TEST

START_TEST(unreadable_folder_is_skipped)
{
    const char *dir = tu_temp_dir();
    ck_assert_int_eq(chmod(dir, 0), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s:%s", dir, "/nonexistent/folder");
    setenv("TOKVOX_PLUGIN_PATH", path, 1);
    ck_assert_int_eq(load("grvq", TOKVOX_PLUGIN_QUANTIZER), TOKVOX_OK);
    chmod(dir, 0700);
}
END_TEST

static void count_visit(void *ctx, const tokvox_plugin_info *info)
{
    int *counts = ctx;
    ck_assert_uint_eq(info->size, sizeof *info);
    counts[info->error == TOKVOX_OK ? 0 : 1]++;
    if (info->name && !strcmp(info->name, "grvq"))
        counts[2]++;
}

START_TEST(scan_reports_good_and_broken)
{
    use_test_plugins();
    int counts[3] = {0, 0, 0};
    tokvox_plugins_scan(count_visit, counts);
    /* rvq, grvq, stftcodec, fails_create, newer_minor, older_minor */
    ck_assert_int_ge(counts[0], 6);
    ck_assert_int_ge(counts[1], 4);  /* bad_abi, abi1, no_entry, not_elf */
    ck_assert_int_eq(counts[2], 1);
    char search[4096];
    tokvox_plugin_search_path(search, sizeof search);
    ck_assert_ptr_nonnull(strstr(search, getenv("TOKVOX_TEST_PLUGIN_DIR")));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugins");
    TCase *tc = tcase_create("host");
    tcase_add_test(tc, real_plugins_load);
    tcase_add_test(tc, wrong_kind_is_refused);
    tcase_add_test(tc, wrong_abi_major_names_file_and_versions);
    tcase_add_test(tc, newer_minor_loads);
    tcase_add_test(tc, one_object_many_plugins);
    tcase_add_test(tc, previous_minor_loads);
    tcase_add_test(tc, abi1_plugin_is_refused_saying_why);
    tcase_add_test(tc, stale_object_beside_its_replacement);
    tcase_add_test(tc, missing_entry_symbol_is_refused);
    tcase_add_test(tc, not_a_shared_object_is_refused);
    tcase_add_test(tc, missing_plugin_lists_search_path);
    tcase_add_test(tc, names_cannot_be_paths);
    tcase_add_test(tc, current_directory_is_not_searched);
    tcase_add_test(tc, unreadable_folder_is_skipped);
    tcase_add_test(tc, scan_reports_good_and_broken);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
