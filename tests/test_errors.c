/* tokvox_strerror: a distinct message for every tokvox_error value, "unknown
 * error" for everything else; the version string and number agree. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "tokvox/tokvox.h"

#define UNKNOWN "unknown error"

START_TEST(every_error_has_its_own_message)
{
    for (int e = TOKVOX_OK; e >= TOKVOX_ERR_REPLAY; e--) {
        const char *m = tokvox_strerror(e);
        ck_assert_msg(m != NULL, "error %d has no message", e);
        ck_assert_msg(m[0] != '\0', "error %d has an empty message", e);
        ck_assert_msg(strcmp(m, UNKNOWN) != 0, "error %d is \"%s\"", e, m);
        for (int other = TOKVOX_OK; other > e; other--)
            ck_assert_msg(strcmp(m, tokvox_strerror(other)) != 0,
                          "errors %d and %d share the message \"%s\"", e, other, m);
    }
    /* a few by name, so a shifted table is caught */
    ck_assert_str_eq(tokvox_strerror(TOKVOX_OK), "success");
    ck_assert_ptr_nonnull(strstr(tokvox_strerror(TOKVOX_ERR_NO_MEMORY), "memory"));
    ck_assert_ptr_nonnull(strstr(tokvox_strerror(TOKVOX_ERR_CHECKSUM), "checksum"));
    ck_assert_ptr_nonnull(strstr(tokvox_strerror(TOKVOX_ERR_PLUGIN_NOT_FOUND), "not found"));
    ck_assert_ptr_nonnull(strstr(tokvox_strerror(TOKVOX_ERR_STATE), "state"));
}
END_TEST

START_TEST(other_values_are_unknown)
{
    const int others[] = {1, 2, 100, INT_MAX, TOKVOX_ERR_REPLAY - 1, TOKVOX_ERR_REPLAY - 2, -100,
                          -1000000, INT_MIN + 1, INT_MIN};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        const char *m = tokvox_strerror(others[i]);
        ck_assert_msg(m && strcmp(m, UNKNOWN) == 0, "strerror(%d) = \"%s\"", others[i],
                      m ? m : "(null)");
    }
}
END_TEST

START_TEST(version_string_matches_number)
{
    const char *v = tokvox_version();
    ck_assert_ptr_nonnull(v);
    unsigned major, minor, patch;
    char tail;
    ck_assert_msg(sscanf(v, "%u.%u.%u%c", &major, &minor, &patch, &tail) == 3,
                  "version \"%s\" is not MAJOR.MINOR.PATCH", v);
    ck_assert(minor < 100 && patch < 100);
    ck_assert_int_eq(tokvox_version_number(), (int)(major * 10000 + minor * 100 + patch));
    ck_assert_int_gt(tokvox_version_number(), 0);
    /* the headers' macros are the library's version */
    ck_assert_int_eq(TOKVOX_VERSION_NUMBER, tokvox_version_number());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, every_error_has_its_own_message);
    tcase_add_test(tc, other_values_are_unknown);
    tcase_add_test(tc, version_string_matches_number);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
