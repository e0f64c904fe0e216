/* test_auth.c - the bearer token check: the constant-time comparison against
 * memcmp, the Authorization header forms that pass and fail, and which
 * configured tokens are accepted. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

START_TEST(ct_equal_agrees_with_memcmp)
{
    unsigned char a[64], b[64];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = b[i] = (unsigned char)(i * 37 + 11);
    ck_assert(auth_ct_equal(a, b, sizeof a));
    ck_assert(auth_ct_equal(a, b, 0));
    /* one differing bit anywhere, first and last byte included */
    for (size_t i = 0; i < sizeof a; i++)
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (unsigned char)(1u << bit);
            ck_assert_msg(!auth_ct_equal(a, b, sizeof a), "byte %zu bit %d", i, bit);
            ck_assert_int_eq(auth_ct_equal(a, b, i), memcmp(a, b, i) == 0); /* before it: equal */
            b[i] ^= (unsigned char)(1u << bit);
        }
    ck_assert(auth_ct_equal(a, b, sizeof a));
}
END_TEST

START_TEST(disabled_lets_everything_through)
{
    auth_t a;
    auth_init(&a, "");
    ck_assert(!a.enabled);
    ck_assert_int_eq(auth_check(&a, NULL), AUTH_OK);
    ck_assert_int_eq(auth_check(&a, "Basic Zm9vOmJhcg=="), AUTH_OK);
    auth_init(&a, NULL);
    ck_assert_int_eq(auth_check(&a, NULL), AUTH_OK);
}
END_TEST

START_TEST(header_forms)
{
    auth_t a;
    auth_init(&a, "s3cr3t-T0ken_42");
    ck_assert(a.enabled);
    ck_assert_int_eq(auth_check(&a, "Bearer s3cr3t-T0ken_42"), AUTH_OK);
    ck_assert_int_eq(auth_check(&a, "bearer s3cr3t-T0ken_42"), AUTH_OK);   /* scheme: any case */
    ck_assert_int_eq(auth_check(&a, "BEARER   s3cr3t-T0ken_42 \t"), AUTH_OK);
    ck_assert_int_eq(auth_check(&a, NULL), AUTH_MISSING);
    ck_assert_int_eq(auth_check(&a, ""), AUTH_MISSING);
    ck_assert_int_eq(auth_check(&a, "s3cr3t-T0ken_42"), AUTH_MISSING);      /* no scheme */
    ck_assert_int_eq(auth_check(&a, "Basic s3cr3t-T0ken_42"), AUTH_MISSING);
    ck_assert_int_eq(auth_check(&a, "Bearers3cr3t-T0ken_42"), AUTH_MISSING);
    ck_assert_int_eq(auth_check(&a, "Bearer"), AUTH_MISSING);
    ck_assert_int_eq(auth_check(&a, "Bearer "), AUTH_INVALID);
    ck_assert_int_eq(auth_check(&a, "Bearer s3cr3t-T0ken_4"), AUTH_INVALID);  /* prefix */
    ck_assert_int_eq(auth_check(&a, "Bearer s3cr3t-T0ken_421"), AUTH_INVALID);
    ck_assert_int_eq(auth_check(&a, "Bearer S3cr3t-T0ken_42"), AUTH_INVALID); /* exact case */
    ck_assert_int_eq(auth_check(&a, "Bearer s3cr3t-T0ken_43"), AUTH_INVALID);
    ck_assert_int_eq(auth_check(&a, "Bearer s3cr3t T0ken_42"), AUTH_INVALID);
    char long_hdr[600] = "Bearer ";
    memset(long_hdr + 7, 'x', 500);
    ck_assert_int_eq(auth_check(&a, long_hdr), AUTH_INVALID);
}
END_TEST

START_TEST(longest_token_matches_only_itself)
{
    char tok[AUTH_TOKEN_MAX], hdr[AUTH_TOKEN_MAX + 16];
    memset(tok, 'k', AUTH_TOKEN_MAX - 1);
    tok[AUTH_TOKEN_MAX - 1] = 0;
    ck_assert_int_eq(auth_token_valid("auth_token", tok, NULL), RD_OK);
    auth_t a;
    auth_init(&a, tok);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    ck_assert_int_eq(auth_check(&a, hdr), AUTH_OK);
    hdr[strlen(hdr) - 1] = 'j'; /* the last byte differs */
    ck_assert_int_eq(auth_check(&a, hdr), AUTH_INVALID);
    hdr[strlen(hdr) - 1] = 0; /* one shorter */
    ck_assert_int_eq(auth_check(&a, hdr), AUTH_INVALID);
}
END_TEST

START_TEST(token_syntax)
{
    rd_error_t err;
    static const char *const ok[] = {"", "a", "abc123", "A-._~+/z", "dG9rZW4=", "dG9rZQ==",
                                     "0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_assert_msg(auth_token_valid("auth_token", ok[i], &err) == RD_OK, "'%s': %s", ok[i],
                      err.msg);
    static const char *const bad[] = {"has space", "=abc", "ab=c", "tab\there", "<redacted>",
                                      "quote\"d", "semi;colon", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(auth_token_valid("auth_token", bad[i], &err) == RD_ERR_ARG, "'%s' passed",
                      bad[i]);
        ck_assert_ptr_nonnull(strstr(err.msg, "auth_token: must be"));
        ck_assert_msg(!strstr(err.msg, bad[i]), "the message shows the token: %s", err.msg);
    }
    char tok[AUTH_TOKEN_MAX + 1];
    memset(tok, 'k', AUTH_TOKEN_MAX);
    tok[AUTH_TOKEN_MAX] = 0;
    ck_assert_int_eq(auth_token_valid("auth_token", tok, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "got 256 bytes"));
}
END_TEST

/* Two environment names for one setting that disagree get a warning that
 * never shows either token; agreeing or single ones get none. */
START_TEST(env_conflict_is_reported)
{
    char msg[256];
    unsetenv("RESNETD_AUTH_TOKEN");
    unsetenv("RESNETD_TOKEN");
    ck_assert(!auth_env_conflict(msg, sizeof msg));
    setenv("RESNETD_TOKEN", "alias-secret", 1);
    ck_assert(!auth_env_conflict(msg, sizeof msg));
    setenv("RESNETD_AUTH_TOKEN", "alias-secret", 1);
    ck_assert(!auth_env_conflict(msg, sizeof msg));
    setenv("RESNETD_AUTH_TOKEN", "main-secret", 1);
    ck_assert(auth_env_conflict(msg, sizeof msg));
    ck_assert_msg(strstr(msg, "both set and differ; RESNETD_AUTH_TOKEN wins, so auth is on"), "%s", msg);
    ck_assert(!strstr(msg, "secret"));
    setenv("RESNETD_AUTH_TOKEN", "", 1); /* empty turns auth off: the dangerous case */
    ck_assert(auth_env_conflict(msg, sizeof msg));
    ck_assert_msg(strstr(msg, "(one is empty); RESNETD_AUTH_TOKEN wins, so auth is OFF"), "%s", msg);
    setenv("RESNETD_TOKEN", "", 1);
    ck_assert(!auth_env_conflict(msg, sizeof msg));
    unsetenv("RESNETD_AUTH_TOKEN");
    unsetenv("RESNETD_TOKEN");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, ct_equal_agrees_with_memcmp);
    tcase_add_test(tc, disabled_lets_everything_through);
    tcase_add_test(tc, header_forms);
    tcase_add_test(tc, longest_token_matches_only_itself);
    tcase_add_test(tc, token_syntax);
    tcase_add_test(tc, env_conflict_is_reported);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
