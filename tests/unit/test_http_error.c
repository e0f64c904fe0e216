/* test_http_error.c - the status -> HTTP -> gRPC mapping tables, the routing table
 * (paths, methods, Allow, the {name} segment) and the base64 decoder of
 * KServe BYTES: the pure parts of the HTTP layer. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "http_error.h"
#include "routes.h"

START_TEST(status_mapping)
{
    ck_assert_int_eq(http_error_status(RD_OK, HTTP_CTX_IMAGE), 200);
    ck_assert_int_eq(http_error_status(RD_ERR_FORMAT, HTTP_CTX_IMAGE), 400);
    ck_assert_int_eq(http_error_status(RD_ERR_LIMIT, HTTP_CTX_IMAGE), 413);
    ck_assert_int_eq(http_error_status(RD_ERR_LIMIT, HTTP_CTX_BODY), 413);
    ck_assert_int_eq(http_error_status(RD_ERR_UNSUPPORTED, HTTP_CTX_BODY), 415);
    ck_assert_int_eq(http_error_status(RD_ERR_SHAPE, HTTP_CTX_TENSOR), 422);
    ck_assert_int_eq(http_error_status(RD_ERR_UNSUPPORTED, HTTP_CTX_TENSOR), 422);
    ck_assert_int_eq(http_error_status(RD_ERR_FORMAT, HTTP_CTX_TENSOR), 400);
    ck_assert_int_eq(http_error_status(RD_ERR_LIMIT, HTTP_CTX_QUEUE), 503);
    ck_assert_int_eq(http_error_status(RD_ERR_TIMEOUT, HTTP_CTX_INFERENCE), 504);
    ck_assert_int_eq(http_error_status(RD_ERR_DNNL, HTTP_CTX_INFERENCE), 500);
    ck_assert_int_eq(http_error_status(RD_ERR_NOMEM, HTTP_CTX_BODY), 503);
    ck_assert_int_eq(http_error_drop_status(METRICS_DROP_DEADLINE), 504);
    ck_assert_int_eq(http_error_drop_status(METRICS_DROP_CANCELLED), 499);
    ck_assert_int_eq(http_error_drop_status(METRICS_DROP_SHUTDOWN), 503);
    ck_assert_str_eq(http_error_code(504), "deadline_exceeded");
    ck_assert_str_eq(http_error_code(415), "unsupported_media_type");
    ck_assert_str_eq(http_error_code(401), "unauthorized");
    ck_assert(http_error_retryable(503) && http_error_retryable(429) && !http_error_retryable(500));
    json_t *o = http_error_object(404, "gone");
    ck_assert_str_eq(json_string_value(json_object_get(o, "code")), "not_found");
    ck_assert_str_eq(json_string_value(json_object_get(o, "message")), "gone");
    json_decref(o);
}
END_TEST

/* gRPC codes come from the same HTTP status as REST's answer to the same
 * failure (status_map.h). */
START_TEST(grpc_mapping)
{
    ck_assert_int_eq(status_map_grpc(http_error_status(RD_OK, HTTP_CTX_IMAGE)), GRPC_STATUS_OK);
    ck_assert_int_eq(status_map_grpc(http_error_status(RD_ERR_FORMAT, HTTP_CTX_IMAGE)),
                     GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(status_map_grpc(http_error_status(RD_ERR_SHAPE, HTTP_CTX_TENSOR)),
                     GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(status_map_grpc(http_error_status(RD_ERR_LIMIT, HTTP_CTX_IMAGE)),
                     GRPC_STATUS_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(status_map_grpc(http_error_status(RD_ERR_LIMIT, HTTP_CTX_QUEUE)),
                     GRPC_STATUS_UNAVAILABLE);
    ck_assert_int_eq(status_map_grpc(http_error_status(RD_ERR_TIMEOUT, HTTP_CTX_INFERENCE)),
                     GRPC_STATUS_DEADLINE_EXCEEDED);
    ck_assert_int_eq(status_map_grpc(http_error_status(RD_ERR_DNNL, HTTP_CTX_INFERENCE)),
                     GRPC_STATUS_INTERNAL);
    ck_assert_int_eq(status_map_grpc(http_error_drop_status(METRICS_DROP_DEADLINE)),
                     GRPC_STATUS_DEADLINE_EXCEEDED);
    ck_assert_int_eq(status_map_grpc(http_error_drop_status(METRICS_DROP_CANCELLED)),
                     GRPC_STATUS_CANCELLED);
    ck_assert_int_eq(status_map_grpc(401), GRPC_STATUS_UNAUTHENTICATED);
    ck_assert_int_eq(status_map_grpc(404), GRPC_STATUS_NOT_FOUND);
    ck_assert_int_eq(status_map_grpc(501), GRPC_STATUS_UNIMPLEMENTED);
    ck_assert_int_eq(status_map_grpc(418), GRPC_STATUS_UNKNOWN);
}
END_TEST

START_TEST(routing)
{
    metrics_endpoint_t ep;
    char param[128];
    char ver[16];
    const char *allow;
    ck_assert_ptr_eq(routes_find("/classify", "POST", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_classify);
    ck_assert_int_eq(ep, METRICS_EP_CLASSIFY);
    ck_assert_ptr_null(routes_find("/classify", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow));
    ck_assert_str_eq(allow, "POST");
    ck_assert_ptr_null(routes_find("/healthz", "PUT", &ep, param, sizeof param, ver, sizeof ver, &allow));
    ck_assert_str_eq(allow, "GET, HEAD");
    ck_assert_ptr_eq(routes_find("/healthz", "HEAD", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_healthz);
    ck_assert_ptr_eq(routes_find("/v2/models/resnet50/infer", "POST", &ep, param, sizeof param, ver, sizeof ver,
                                 &allow), &route_v2_infer);
    ck_assert_str_eq(param, "resnet50");
    ck_assert_int_eq(ep, METRICS_EP_V2_INFER);
    ck_assert_ptr_eq(routes_find("/v2/models/m/ready", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_v2_model_ready);
    ck_assert_ptr_eq(routes_find("/v2/models/m", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_v2_model);
    ck_assert_ptr_eq(routes_find("/v2/models/m/", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_v2_model);
    ck_assert_ptr_eq(routes_find("/v2/models/r50/versions/1/infer", "POST", &ep, param,
                                 sizeof param, ver, sizeof ver, &allow), &route_v2_infer);
    ck_assert_str_eq(param, "r50");
    ck_assert_ptr_eq(routes_find("/v2/models/m/versions/1", "GET", &ep, param, sizeof param, ver, sizeof ver,
                                 &allow), &route_v2_model);
    ck_assert_ptr_eq(routes_find("/v2/models/m/versions/1/ready", "GET", &ep, param,
                                 sizeof param, ver, sizeof ver, &allow), &route_v2_model_ready);
    ck_assert_ptr_eq(routes_find("/v2/models/m/versions/12/infer", "POST", &ep, param,
                                 sizeof param, ver, sizeof ver, &allow), &route_v2_infer);
    ck_assert_str_eq(param, "m");
    ck_assert_str_eq(ver, "12");
    ck_assert_ptr_eq(routes_find("/models/m2/classify", "POST", &ep, param, sizeof param, ver,
                                 sizeof ver, &allow), &route_classify);
    ck_assert_str_eq(param, "m2");
    ck_assert_str_eq(ver, "");
    ck_assert_ptr_eq(routes_find("/v2/repository/models/m3/load", "POST", &ep, param, sizeof param,
                                 ver, sizeof ver, &allow), &route_repository_load);
    ck_assert_str_eq(param, "m3");
    ck_assert_int_eq(ep, METRICS_EP_REPOSITORY);
    ck_assert_ptr_null(routes_find("/v2/models//infer", "POST", &ep, param, sizeof param, ver, sizeof ver, &allow));
    ck_assert_ptr_null(routes_find("/v2/models/m/infer/x", "POST", &ep, param, sizeof param, ver, sizeof ver,
                                   &allow));
    ck_assert_ptr_null(allow);
    ck_assert_int_eq(ep, METRICS_EP_OTHER);
    ck_assert_ptr_null(routes_find("/classifyx", "POST", &ep, param, sizeof param, ver, sizeof ver, &allow));
    ck_assert_ptr_null(routes_find("", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow));
}
END_TEST

/* TorchServe and TF Serving URLs: PUT, a "{}" that stops at ':', the first
 * "{}" as the param, version 1 or the catch-all version route. */
START_TEST(routing_other_protocols)
{
    metrics_endpoint_t ep;
    char param[128];
    char ver[16];
    const char *allow;
    ck_assert_ptr_eq(routes_find("/predictions/r50", "PUT", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_ts_predict);
    ck_assert_str_eq(param, "r50");
    ck_assert_int_eq(ep, METRICS_EP_TS_PREDICT);
    ck_assert_ptr_eq(routes_find("/predictions/r50/1", "POST", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_ts_predict);
    ck_assert_ptr_eq(routes_find("/predictions/r50/7", "POST", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_ts_predict);
    ck_assert_str_eq(ver, "7");
    ck_assert_str_eq(param, "r50");
    ck_assert_ptr_null(routes_find("/predictions/r50", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow));
    ck_assert_str_eq(allow, "POST, PUT");
    ck_assert_ptr_eq(routes_find("/ping", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_ts_ping);
    ck_assert_ptr_eq(routes_find("/v1/models/r50:predict", "POST", &ep, param, sizeof param, ver, sizeof ver,
                                 &allow), &route_tf_predict);
    ck_assert_str_eq(param, "r50");
    ck_assert_int_eq(ep, METRICS_EP_TF_PREDICT);
    ck_assert_ptr_eq(routes_find("/v1/models/r50/versions/1:predict", "POST", &ep, param,
                                 sizeof param, ver, sizeof ver, &allow), &route_tf_predict);
    ck_assert_ptr_eq(routes_find("/v1/models/r50/versions/2:predict", "POST", &ep, param,
                                 sizeof param, ver, sizeof ver, &allow), &route_tf_predict);
    ck_assert_str_eq(ver, "2");
    ck_assert_str_eq(param, "r50");
    ck_assert_ptr_eq(routes_find("/v1/models/r50", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_tf_status);
    ck_assert_int_eq(ep, METRICS_EP_TF_STATUS);
    ck_assert_ptr_eq(routes_find("/v1/models/r50/versions/1", "GET", &ep, param, sizeof param, ver, sizeof ver,
                                 &allow), &route_tf_status);
    ck_assert_ptr_eq(routes_find("/v1/models/r50/versions/3", "GET", &ep, param, sizeof param, ver, sizeof ver,
                                 &allow), &route_tf_status);
    ck_assert_str_eq(ver, "3");
    ck_assert_ptr_null(routes_find("/v1/models/r50:predict", "GET", &ep, param, sizeof param, ver, sizeof ver,
                                   &allow));
    ck_assert_str_eq(allow, "POST");
    ck_assert_ptr_null(routes_find("/v1/models/r50:explain", "POST", &ep, param, sizeof param, ver, sizeof ver,
                                   &allow));
    ck_assert_ptr_null(routes_find("/v1/models/:predict", "POST", &ep, param, sizeof param, ver, sizeof ver,
                                   &allow));
    ck_assert_ptr_null(routes_find("/v2/models/r50:predict", "GET", &ep, param, sizeof param, ver, sizeof ver,
                                   &allow));
}
END_TEST

/* The page's routes, and the shape of the HTTP layer's early refusals by path. */
START_TEST(page_routes_and_shapes)
{
    metrics_endpoint_t ep;
    char param[64], ver[16];
    const char *allow;
    ck_assert_ptr_eq(routes_find("/", "GET", &ep, param, sizeof param, ver, sizeof ver, &allow), &route_ui);
    ck_assert_int_eq(ep, METRICS_EP_UI);
    ck_assert_str_eq(param, "");
    ck_assert_ptr_eq(routes_find("/ui/app.js", "HEAD", &ep, param, sizeof param, ver, sizeof ver, &allow),
                     &route_ui);
    ck_assert_str_eq(param, "app.js");
    ck_assert_ptr_null(routes_find("/", "POST", &ep, param, sizeof param, ver, sizeof ver, &allow));
    ck_assert_str_eq(allow, "GET, HEAD");
    ck_assert_ptr_eq(routes_find("/v2/repository/index", "POST", &ep, param, sizeof param, ver, sizeof ver,
                                 &allow), &route_repository_index);
    ck_assert_int_eq(ep, METRICS_EP_REPOSITORY);

    ck_assert_int_eq(http_error_shape("/v2"), HTTP_SHAPE_KSERVE);
    ck_assert_int_eq(http_error_shape("/v2/models/m/infer"), HTTP_SHAPE_KSERVE);
    ck_assert_int_eq(http_error_shape("/v2x"), HTTP_SHAPE_RESNETD);
    ck_assert_int_eq(http_error_shape("/predictions/m/1"), HTTP_SHAPE_TORCHSERVE);
    ck_assert_int_eq(http_error_shape("/ping"), HTTP_SHAPE_TORCHSERVE);
    ck_assert_int_eq(http_error_shape("/v1/models/m:predict"), HTTP_SHAPE_TFSERVING);
    ck_assert_int_eq(http_error_shape("/classify"), HTTP_SHAPE_RESNETD);
    json_t *ts = http_error_body(HTTP_SHAPE_TORCHSERVE, 413, "too big");
    ck_assert_int_eq(json_integer_value(json_object_get(ts, "code")), 413);
    ck_assert_str_eq(json_string_value(json_object_get(ts, "type")), "RequestEntityTooLargeException");
    ck_assert_str_eq(json_string_value(json_object_get(ts, "message")), "too big");
    json_decref(ts);
    json_t *tf = http_error_body(HTTP_SHAPE_TFSERVING, 503, "busy");
    ck_assert_str_eq(json_string_value(json_object_get(tf, "error")), "busy");
    json_decref(tf);
    json_t *rd = http_error_body(HTTP_SHAPE_RESNETD, 401, "token");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(rd, "error"), "code")),
                     "unauthorized");
    json_decref(rd);
}
END_TEST

START_TEST(base64_decoding)
{
    uint8_t *out;
    size_t len;
    rd_error_t err;
    ck_assert_int_eq(base64_decode("aGVsbG8gd29ybGQ=", 16, &out, &len, &err), RD_OK);
    ck_assert_uint_eq(len, 11);
    ck_assert(!memcmp(out, "hello world", 11));
    free(out);
    ck_assert_int_eq(base64_decode("/+8A", 4, &out, &len, &err), RD_OK);
    ck_assert_uint_eq(len, 3);
    ck_assert(out[0] == 0xFF && out[1] == 0xEF && out[2] == 0x00);
    free(out);
    ck_assert_int_eq(base64_decode("", 0, &out, &len, &err), RD_OK);
    ck_assert_uint_eq(len, 0);
    free(out);
    ck_assert_int_eq(base64_decode("ab!d", 4, &out, &len, &err), RD_ERR_FORMAT);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(base64_decode("abcde", 5, &out, &len, &err), RD_ERR_FORMAT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, status_mapping);
    tcase_add_test(tc, grpc_mapping);
    tcase_add_test(tc, routing);
    tcase_add_test(tc, routing_other_protocols);
    tcase_add_test(tc, page_routes_and_shapes);
    tcase_add_test(tc, base64_decoding);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
