/* test_multipart.c - the multipart/form-data reader on bytes alone: parts,
 * names, filenames and content types; every split of a body into chunks
 * giving the same parts; the refusals (no boundary, no parts, truncated,
 * too many parts). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

#define CT "multipart/form-data; boundary=XyZ"

/* Two parts: a field and a file whose bytes hold CR, LF and a near-boundary. */
static const char body2[] = "preamble\r\n"
                            "--XyZ\r\n"
                            "Content-Disposition: form-data; name=\"topk\"\r\n"
                            "\r\n"
                            "3\r\n"
                            "--XyZ\r\n"
                            "Content-Disposition: form-data; name=\"image\"; filename=\"a b.jpg\"\r\n"
                            "Content-Type: image/jpeg\r\n"
                            "\r\n"
                            "\xff\xd8\r\n--XyX\r\r\n-\r\n--Xy\xff\xd9"
                            "\r\n--XyZ--\r\n"
                            "epilogue";
static const char file2[] = "\xff\xd8\r\n--XyX\r\r\n-\r\n--Xy\xff\xd9";

static void check_two_parts(const multipart_t *mp)
{
    ck_assert_int_eq(mp->n_parts, 2);
    ck_assert_str_eq(mp->parts[0].name, "topk");
    ck_assert_ptr_null(mp->parts[0].filename);
    ck_assert_ptr_null(mp->parts[0].content_type);
    ck_assert_uint_eq(mp->parts[0].len, 1);
    ck_assert_int_eq(mp->parts[0].data[0], '3');
    ck_assert_str_eq(mp->parts[1].name, "image");
    ck_assert_str_eq(mp->parts[1].filename, "a b.jpg");
    ck_assert_str_eq(mp->parts[1].content_type, "image/jpeg");
    ck_assert_uint_eq(mp->parts[1].len, sizeof file2 - 1);
    ck_assert_mem_eq(mp->parts[1].data, file2, sizeof file2 - 1);
}

START_TEST(parts_in_order_with_their_headers)
{
    multipart_t mp;
    rd_error_t err = {0};
    ck_assert_int_eq(multipart_parse(CT, (const uint8_t *)body2, sizeof body2 - 1, 8, &mp, &err),
                     RD_OK);
    check_two_parts(&mp);
    multipart_free(&mp);
}
END_TEST

/* Every cut into two chunks, and one byte at a time: the same parts. */
START_TEST(any_split_of_the_body_gives_the_same_parts)
{
    size_t len = sizeof body2 - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        multipart_reader_t *r;
        rd_error_t err = {0};
        ck_assert_int_eq(multipart_begin(CT, 8, &r, &err), RD_OK);
        multipart_feed(r, (const uint8_t *)body2, cut);
        multipart_feed(r, (const uint8_t *)body2 + cut, len - cut);
        multipart_t mp;
        ck_assert_msg(multipart_finish(r, &mp, &err) == RD_OK, "cut %zu: %s", cut, err.msg);
        check_two_parts(&mp);
        multipart_free(&mp);
        multipart_reader_free(r);
    }
    multipart_reader_t *r;
    rd_error_t err = {0};
    ck_assert_int_eq(multipart_begin(CT, 8, &r, &err), RD_OK);
    for (size_t i = 0; i < len; i++)
        multipart_feed(r, (const uint8_t *)body2 + i, 1);
    multipart_t mp;
    ck_assert_int_eq(multipart_finish(r, &mp, &err), RD_OK);
    check_two_parts(&mp);
    multipart_free(&mp);
    multipart_reader_free(r);
}
END_TEST

START_TEST(quoted_boundary_and_first_line_delimiter)
{
    static const char body[] = "--q q\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--q q--\r\n";
    multipart_t mp;
    rd_error_t err = {0};
    ck_assert_int_eq(multipart_parse("multipart/form-data; boundary=\"q q\"", (const uint8_t *)body,
                                     sizeof body - 1, 8, &mp, &err),
                     RD_OK);
    ck_assert_int_eq(mp.n_parts, 1);
    ck_assert_str_eq(mp.parts[0].name, "x");
    ck_assert_uint_eq(mp.parts[0].len, 1);
    multipart_free(&mp);
}
END_TEST

static rd_status_t parse(const char *ct, const char *body, int max_parts, rd_error_t *err)
{
    multipart_t mp;
    rd_status_t st = multipart_parse(ct, (const uint8_t *)body, strlen(body), max_parts, &mp, err);
    if (st == RD_OK)
        multipart_free(&mp);
    else
        ck_assert_int_eq(mp.n_parts, 0);
    return st;
}

START_TEST(refusals)
{
    rd_error_t err = {0};
    ck_assert_int_eq(parse("multipart/form-data", "--x\r\n", 8, &err), RD_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse("multipart/form-data; boundary=", "--x\r\n", 8, &err),
                     RD_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse("multipart/mixed; boundary=x", "--x\r\n", 8, &err), RD_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse(CT, "", 8, &err), RD_ERR_FORMAT);
    ck_assert_int_eq(parse(CT, "junk junk junk", 8, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "no parts"));
    /* truncated: the closing delimiter never comes */
    ck_assert_int_eq(parse(CT, "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nabc", 8, &err),
                     RD_ERR_FORMAT);
    /* garbage after a delimiter */
    ck_assert_int_eq(parse(CT, "--XyZ!!\r\n\r\n--XyZ--", 8, &err), RD_ERR_FORMAT);
    char many[1024] = "";
    for (int i = 0; i < 5; i++)
        strcat(many, "--XyZ\r\nContent-Disposition: form-data; name=p\r\n\r\nx\r\n");
    strcat(many, "--XyZ--\r\n");
    ck_assert_int_eq(parse(CT, many, 5, &err), RD_OK);
    ck_assert_int_eq(parse(CT, many, 4, &err), RD_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "more than 4 parts"));
}
END_TEST

/* The media type is matched whole and case-insensitively, and so are the
 * parameter names (RFC 9110 8.3.1). */
START_TEST(media_type_and_parameter_names)
{
    ck_assert(multipart_is_form_data("multipart/form-data"));
    ck_assert(multipart_is_form_data("Multipart/Form-Data; boundary=x"));
    ck_assert(multipart_is_form_data("multipart/form-data ;boundary=x"));
    ck_assert(!multipart_is_form_data("multipart/form-dataX; boundary=x"));
    ck_assert(!multipart_is_form_data("multipart/form-dat"));
    ck_assert(!multipart_is_form_data(NULL));
    rd_error_t err = {0};
    const char *one = "--XyZ\r\nContent-Disposition: form-data; NAME=\"a\"; FileName=\"f.jpg\"\r\n\r\n"
                      "abc\r\n--XyZ--\r\n";
    multipart_reader_t *r = NULL;
    ck_assert_int_eq(multipart_begin("multipart/form-data; BOUNDARY=XyZ", 4, &r, &err), RD_OK);
    multipart_feed(r, (const uint8_t *)one, strlen(one));
    multipart_t mp = {0};
    ck_assert_int_eq(multipart_finish(r, &mp, &err), RD_OK);
    multipart_reader_free(r);
    ck_assert_int_eq(mp.n_parts, 1);
    ck_assert_str_eq(mp.parts[0].name, "a");
    ck_assert_str_eq(mp.parts[0].filename, "f.jpg");
    multipart_free(&mp);
    ck_assert_int_eq(multipart_begin("multipart/form-dataX; boundary=XyZ", 4, &r, &err), RD_ERR_UNSUPPORTED);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("multipart");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, parts_in_order_with_their_headers);
    tcase_add_test(tc, any_split_of_the_body_gives_the_same_parts);
    tcase_add_test(tc, quoted_boundary_and_first_line_delimiter);
    tcase_add_test(tc, media_type_and_parameter_names);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("refusals");
    tcase_add_test(tr, refusals);
    suite_add_tcase(s, tr);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
