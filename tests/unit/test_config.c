/* test_config.c - defaults, the JSON file, flags, RESNETD_* variables and
 * their precedence, validation messages, the shipped config/resnetd.json, and
 * that --help lists every key the file accepts. */
#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char tmp_path[64];

/* Writes text to a fresh temporary file; returns its path (valid until the next call). */
static const char *write_tmp(const char *text)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/resnetd_cfg_XXXXXX");
    int fd = mkstemp(tmp_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return tmp_path;
}

static void clear_env(void)
{
    static const char *const vars[] = {"RESNETD_PORT", "RESNETD_MODEL", "RESNETD_MAX_BATCH_SIZE",
                                       "RESNETD_CONFIG", "RESNETD_ACCESS_LOG", "RESNETD_MEAN",
                                       "RESNETD_BIND", "RESNETD_AUTH_TOKEN", "RESNETD_TOKEN",
                                       "RESNETD_TLS_CERT", "RESNETD_TLS_KEY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

START_TEST(defaults_are_the_documented_ones)
{
    config_t c = config_default_params();
    ck_assert_int_eq(c.port, 8080);
    ck_assert_str_eq(c.bind, "127.0.0.1");
    ck_assert_int_eq(c.http_threads, 2);
    ck_assert_int_eq(c.inference_threads, 0);
    ck_assert_str_eq(c.model, "models/resnet50.safetensors");
    ck_assert_str_eq(c.model_name, "");
    ck_assert_int_eq(c.max_batch_size, 8);
    ck_assert_int_eq(c.max_queue_delay_us, 2000);
    ck_assert_int_eq(c.max_queue_length, 64);
    ck_assert_int_eq(c.request_timeout_ms, 10000);
    ck_assert_int_eq(c.max_body_bytes, 16 * 1024 * 1024);
    ck_assert_int_eq(c.max_pixels, 40000000);
    ck_assert_int_eq(c.max_images_per_request, 32);
    ck_assert_int_eq(c.max_connections, 256);
    ck_assert_int_eq(c.connection_timeout_s, 30);
    ck_assert_int_eq(c.drain_timeout_s, 30);
    ck_assert_int_eq(c.topk_default, 5);
    ck_assert_int_eq(c.log_level, LOG_LEVEL_INFO);
    ck_assert(c.access_log);
    ck_assert_str_eq(c.auth_token, ""); /* no auth */
    ck_assert_str_eq(c.tls_cert, "");   /* plain HTTP */
    ck_assert_str_eq(c.tls_key, "");
    ck_assert(!c.has_mean && !c.has_std && c.input_h == 0 && c.scale == 0);
    ck_assert_int_eq(config_validate(&c, NULL), RD_OK);
}
END_TEST

START_TEST(file_sets_every_kind_of_value)
{
    const char *path = write_tmp("{\"port\": 9000, \"bind\": \"0.0.0.0\", \"access_log\": false,"
                                 " \"max_queue_delay_us\": \"500\", \"input_size\": \"128x96\","
                                 " \"mean\": [103.939, 116.779, 123.68], \"std\": \"1,1,1\","
                                 " \"channel_order\": \"bgr\", \"scale\": 1, \"log_level\": \"debug\","
                                 " \"max_body_bytes\": 1048576}");
    config_t c = config_default_params();
    rd_error_t err;
    ck_assert_msg(config_load_file(path, &c, &err) == RD_OK, "%s", err.msg);
    unlink(path);
    ck_assert_int_eq(c.port, 9000);
    ck_assert_str_eq(c.bind, "0.0.0.0");
    ck_assert(!c.access_log);
    ck_assert_int_eq(c.max_queue_delay_us, 500);
    ck_assert_int_eq(c.input_h, 128);
    ck_assert_int_eq(c.input_w, 96);
    ck_assert(c.has_mean && c.has_std);
    ck_assert_float_eq_tol(c.mean[2], 123.68f, 1e-4f);
    ck_assert_float_eq(c.std[1], 1.0f);
    ck_assert_str_eq(c.channel_order, "BGR");
    ck_assert_float_eq(c.scale, 1.0f);
    ck_assert_int_eq(c.log_level, LOG_LEVEL_DEBUG);
    ck_assert_int_eq(c.max_body_bytes, 1048576);
    ck_assert_int_eq(c.max_batch_size, 8); /* untouched */
    model_preproc_t pp = {.resize = 256, .input_h = 224, .input_w = 224, .channel_order = MODEL_RGB,
                          .scale = 1.0f / 255, .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}};
    config_apply_preproc(&c, &pp);
    ck_assert_int_eq(pp.resize, 256);
    ck_assert_int_eq(pp.channel_order, MODEL_BGR);
    ck_assert_float_eq(pp.scale, 1.0f);
    ck_assert_float_eq_tol(pp.mean[0], 103.939f, 1e-4f);
    ck_assert_float_eq(pp.std[0], 1.0f);
    engine_params_t ep = config_engine_params(&c);
    ck_assert_int_eq(ep.input_h, 128);
    ck_assert_int_eq(ep.input_w, 96);
    ck_assert_ptr_null(ep.labels_path);
}
END_TEST

static void expect_file_error(const char *text, rd_status_t code, const char *needle)
{
    const char *path = write_tmp(text);
    config_t c = config_default_params();
    rd_error_t err;
    ck_assert_int_eq(config_load_file(path, &c, &err), code);
    unlink(path);
    ck_assert_msg(strstr(err.msg, needle), "'%s' lacks '%s'", err.msg, needle);
    ck_assert_msg(strstr(err.msg, "/tmp/resnetd_cfg_"), "'%s' lacks the file name", err.msg);
}

START_TEST(file_errors_name_the_key)
{
    expect_file_error("{\"prot\": 8080}", RD_ERR_FORMAT, "unknown key 'prot'");
    expect_file_error("{\"port\": 70000}", RD_ERR_ARG, "port: 70000 is out of range, expected 0..65535");
    expect_file_error("{\"port\": \"80a\"}", RD_ERR_ARG, "port: '80a' is not an integer");
    expect_file_error("{\"port\": 80.5}", RD_ERR_FORMAT, "port: expected an integer");
    expect_file_error("{\"access_log\": \"yes\"}", RD_ERR_FORMAT, "access_log: expected true or false");
    expect_file_error("{\"mean\": [1, 2]}", RD_ERR_FORMAT, "mean: expected an array of 3 numbers");
    expect_file_error("{\"channel_order\": \"RBG\"}", RD_ERR_ARG, "channel_order: 'RBG' must be RGB or BGR");
    expect_file_error("{\"log_level\": \"chatty\"}", RD_ERR_ARG, "log_level");
    expect_file_error("{\"precision\": \"int4\"}", RD_ERR_ARG, "precision: 'int4' is not fp32 or int8");
    expect_file_error("{\"bind\": 7}", RD_ERR_FORMAT, "bind: expected a string");
    expect_file_error("{\"port\": 1, \"port\": 2}", RD_ERR_FORMAT, "duplicate");
    expect_file_error("[1, 2]", RD_ERR_FORMAT, "expected a JSON object");
    expect_file_error("{\"port\": ", RD_ERR_FORMAT, ":1");
    config_t c = config_default_params();
    rd_error_t err;
    ck_assert_int_eq(config_load_file("/nonexistent/resnetd.json", &c, &err), RD_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/resnetd.json"));
}
END_TEST

/* The in-memory twin of config_load_file: same keys, same errors, the origin
 * in place of a path; the text needs no NUL. */
START_TEST(buffer_parses_like_a_file)
{
    config_t c = config_default_params();
    rd_error_t err;
    static const char text[] = "{\"port\": 9090, \"mean\": [1, 2, 3]}XYZ";
    ck_assert_int_eq(config_load_buffer(text, sizeof text - 4, "inline", &c, &err), RD_OK);
    ck_assert_int_eq(c.port, 9090);
    ck_assert_float_eq(c.mean[2], 3.0f);
    ck_assert_int_eq(config_load_buffer(text, sizeof text - 1, "inline", &c, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "config inline"));
    ck_assert_int_eq(config_load_buffer("{\"prot\": 1}", 11, "inline", &c, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "config inline: unknown key 'prot'"));
    ck_assert_int_eq(config_load_buffer("", 0, "inline", &c, &err), RD_ERR_FORMAT);
}
END_TEST

START_TEST(flags_in_both_spellings)
{
    char *argv[] = {"serve", "--port", "8081", "--max-batch-size=16", "--access-log", "off",
                    "--mean", "[0.5,0.5,0.5]", "--input-size", "160", "--topk", "3",
                    "--max_queue_length", "128", "--config", "ignored-here.json",
                    "--precision", "int8", NULL};
    config_t c = config_default_params();
    rd_error_t err;
    ck_assert_int_eq(c.precision, RD_FP32);
    ck_assert_msg(config_apply_args(18, argv, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(c.precision, RD_INT8);
    ck_assert_int_eq(config_engine_params(&c).precision, RD_INT8);
    ck_assert_int_eq(c.port, 8081);
    ck_assert_int_eq(c.max_batch_size, 16);
    ck_assert(!c.access_log);
    ck_assert(c.has_mean);
    ck_assert_float_eq(c.mean[1], 0.5f);
    ck_assert_int_eq(c.input_h, 160);
    ck_assert_int_eq(c.input_w, 160);
    ck_assert_int_eq(c.topk_default, 3);
    ck_assert_int_eq(c.max_queue_length, 128);
}
END_TEST

static void expect_args_error(int argc, char **argv, const char *needle)
{
    config_t c = config_default_params();
    rd_error_t err;
    ck_assert_int_eq(config_apply_args(argc, argv, &c, &err), RD_ERR_ARG);
    ck_assert_msg(strstr(err.msg, needle), "'%s' lacks '%s'", err.msg, needle);
}

START_TEST(flag_errors)
{
    char *a1[] = {"serve", "--prot", "1"};
    expect_args_error(3, a1, "unknown option '--prot'");
    char *a2[] = {"serve", "--port"};
    expect_args_error(2, a2, "option '--port' needs a value");
    char *a3[] = {"serve", "--port", "x"};
    expect_args_error(3, a3, "option --port: port: 'x' is not an integer");
    char *a4[] = {"serve", "image.jpg"};
    expect_args_error(2, a4, "unexpected argument 'image.jpg'");
    char *a5[] = {"serve", "--mean", "1,2"};
    expect_args_error(3, a5, "mean: '1,2' must be three numbers");
    char *a6[] = {"serve", "--input-size", "12x"};
    expect_args_error(3, a6, "input_size: '12x' is not a size");
    char *a7[] = {"serve", "--max-batch-size", "0"};
    expect_args_error(3, a7, "max_batch_size: 0 is out of range, expected 1..1024");
    char *a8[] = {"serve", "--scale=-1"};
    expect_args_error(2, a8, "scale");
}
END_TEST

START_TEST(positional_arguments_for_classify)
{
    char *argv[] = {"classify", "a.jpg", "--topk", "2", "b.jpg", "--", "--odd-name.jpg", NULL};
    char *rest[8];
    int n_rest = -1;
    config_t c = config_default_params();
    rd_error_t err;
    ck_assert_msg(config_apply_args_rest(7, argv, &c, rest, &n_rest, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(n_rest, 3);
    ck_assert_str_eq(rest[0], "a.jpg");
    ck_assert_str_eq(rest[1], "b.jpg");
    ck_assert_str_eq(rest[2], "--odd-name.jpg");
    ck_assert_int_eq(c.topk_default, 2);
}
END_TEST

START_TEST(environment_overrides_flags_overrides_file)
{
    clear_env();
    const char *path = write_tmp("{\"port\": 9000, \"max_batch_size\": 4, \"model\": \"file.safetensors\","
                                 " \"bind\": \"0.0.0.0\"}");
    char cfgpath[64];
    snprintf(cfgpath, sizeof cfgpath, "%s", path);
    char *argv[] = {"serve", "--config", cfgpath, "--port", "9001", "--max-batch-size", "2", NULL};
    setenv("RESNETD_PORT", "9002", 1);
    setenv("RESNETD_MEAN", "", 1); /* empty = from the model */
    config_t c;
    rd_error_t err;
    ck_assert_msg(config_load(7, argv, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(c.port, 9002);                 /* env beats flag and file */
    ck_assert_int_eq(c.max_batch_size, 2);          /* flag beats file */
    ck_assert_str_eq(c.model, "file.safetensors"); /* file beats default */
    ck_assert_str_eq(c.bind, "0.0.0.0");
    ck_assert(!c.has_mean);
    /* RESNETD_CONFIG names the file when given */
    char *argv2[] = {"serve", NULL};
    setenv("RESNETD_CONFIG", cfgpath, 1);
    unsetenv("RESNETD_PORT");
    ck_assert_msg(config_load(1, argv2, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(c.port, 9000);
    setenv("RESNETD_MAX_BATCH_SIZE", "lots", 1);
    ck_assert_int_eq(config_load(1, argv2, &c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "RESNETD_MAX_BATCH_SIZE"));
    setenv("RESNETD_ACCESS_LOG", "", 1);
    unsetenv("RESNETD_MAX_BATCH_SIZE");
    ck_assert_int_eq(config_load(1, argv2, &c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "RESNETD_ACCESS_LOG"));
    clear_env();
    unlink(cfgpath);
}
END_TEST

START_TEST(validation_catches_inconsistencies)
{
    config_t c = config_default_params();
    rd_error_t err;
    c.max_images_per_request = 100;
    ck_assert_int_eq(config_validate(&c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "max_images_per_request (100) exceeds max_queue_length (64)"));
    c = config_default_params();
    c.http_threads = 0;
    ck_assert_int_eq(config_validate(&c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "http_threads: 0 is out of range"));
    c = config_default_params();
    c.has_std = true; /* std all 0 */
    ck_assert_int_eq(config_validate(&c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "std[0]"));
    c = config_default_params();
    c.model[0] = 0;
    ck_assert_int_eq(config_validate(&c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "model: must not be empty"));
    c = config_default_params();
    c.input_h = 10;
    ck_assert_int_eq(config_validate(&c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "input_size"));
}
END_TEST

START_TEST(shipped_config_file_loads)
{
    clear_env();
    char path[1024];
    const char *src = getenv("SRCDIR");
    snprintf(path, sizeof path, "%s/config/resnetd.json", src ? src : "../..");
    config_t c = config_default_params();
    rd_error_t err;
    ck_assert_msg(config_load_file(path, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(config_validate(&c, &err), RD_OK);
    ck_assert_str_eq(c.bind, "0.0.0.0");
    /* every other value in the shipped file is the built-in default */
    config_t d = config_default_params();
    strcpy(d.bind, "0.0.0.0");
    char *a = config_to_json(&c), *b = config_to_json(&d);
    ck_assert_str_eq(a, b);
    /* ... and it lists every key, so it documents them all */
    json_t *file = json_load_file(path, 0, NULL), *all = json_loads(b, 0, NULL);
    ck_assert_ptr_nonnull(file);
    ck_assert_ptr_nonnull(all);
    ck_assert_uint_eq(json_object_size(file), json_object_size(all));
    json_decref(file);
    json_decref(all);
    free(a);
    free(b);
}
END_TEST

START_TEST(json_round_trip_and_help_list_every_key)
{
    config_t c = config_default_params();
    c.input_h = 128;
    c.input_w = 96;
    c.has_std = true;
    c.std[0] = c.std[1] = c.std[2] = 2;
    c.log_level = LOG_LEVEL_WARN;
    c.precision = RD_INT8;
    char *text = config_to_json(&c);
    ck_assert_ptr_nonnull(text);
    const char *path = write_tmp(text);
    config_t back = config_default_params();
    rd_error_t err;
    ck_assert_msg(config_load_file(path, &back, &err) == RD_OK, "%s", err.msg);
    unlink(path);
    char *text2 = config_to_json(&back);
    ck_assert_str_eq(text, text2);
    free(text2);

    /* every key of the JSON appears in --help as flag and env variable */
    char *help = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&help, &n);
    config_print_keys(f);
    config_print_keys_markdown(f);
    fclose(f);
    json_t *o = json_loads(text, 0, NULL);
    const char *key;
    json_t *v;
    int n_keys = 0;
    json_object_foreach(o, key, v) {
        char flag[80], env[80];
        snprintf(flag, sizeof flag, "--%s ", key);
        snprintf(env, sizeof env, "RESNETD_%s", key);
        for (char *p = flag; *p; p++)
            *p = *p == '_' ? '-' : *p;
        for (char *p = env; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        ck_assert_msg(strstr(help, flag), "help lacks %s", flag);
        ck_assert_msg(strstr(help, env), "help lacks %s", env);
        n_keys++;
    }
    ck_assert_int_ge(n_keys, 27);
    ck_assert_ptr_nonnull(strstr(help, "default 8080"));
    json_decref(o);
    free(help);
    free(text);
}
END_TEST

/* auth_token from the file, the flag, RESNETD_AUTH_TOKEN and its alias
 * RESNETD_TOKEN, with the usual precedence; RESNETD_AUTH_TOKEN beats the alias. */
START_TEST(auth_token_sources_and_alias)
{
    clear_env();
    const char *path = write_tmp("{\"auth_token\": \"from-file\"}");
    char cfgpath[64];
    snprintf(cfgpath, sizeof cfgpath, "%s", path);
    char *argv[] = {"serve", "--config", cfgpath, NULL};
    config_t c;
    rd_error_t err;
    ck_assert_msg(config_load(3, argv, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.auth_token, "from-file");
    char *argv2[] = {"serve", "--config", cfgpath, "--auth-token", "from-flag", NULL};
    ck_assert_msg(config_load(5, argv2, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.auth_token, "from-flag");
    setenv("RESNETD_TOKEN", "from-alias", 1);
    ck_assert_msg(config_load(5, argv2, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.auth_token, "from-alias");
    setenv("RESNETD_AUTH_TOKEN", "from-env", 1);
    ck_assert_msg(config_load(5, argv2, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.auth_token, "from-env"); /* the key's own name beats the alias */
    setenv("RESNETD_AUTH_TOKEN", "", 1);       /* set but empty: auth off, still beats the alias */
    ck_assert_msg(config_load(5, argv2, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.auth_token, "");
    clear_env();
    unlink(cfgpath);
}
END_TEST

/* A bad token is refused without echoing it; config_to_json masks a set token
 * with a value that itself fails validation, so a printed config neither leaks
 * the token nor reloads with a guessable one. */
START_TEST(auth_token_is_validated_and_never_printed)
{
    clear_env();
    config_t c = config_default_params();
    rd_error_t err;
    char *argv[] = {"serve", "--auth-token", "two words", NULL};
    ck_assert_int_eq(config_apply_args(3, argv, &c, &err), RD_OK);
    ck_assert_int_eq(config_validate(&c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "auth_token: must be"));
    ck_assert_ptr_null(strstr(err.msg, "two words"));
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    char *argv2[] = {"serve", "--auth-token", big, NULL};
    ck_assert_int_eq(config_apply_args(3, argv2, &c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "auth_token: value is 299 bytes, the limit is 255"));
    ck_assert_ptr_null(strstr(err.msg, "aaaa"));

    c = config_default_params();
    strcpy(c.auth_token, "Sup3rS3cret");
    ck_assert_int_eq(config_validate(&c, &err), RD_OK);
    char *text = config_to_json(&c);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strstr(text, "Sup3rS3cret"));
    json_t *o = json_loads(text, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "auth_token")), "<redacted>");
    json_decref(o);
    const char *path = write_tmp(text);
    config_t back = config_default_params();
    ck_assert_int_eq(config_load_file(path, &back, &err), RD_OK);
    unlink(path);
    ck_assert_int_eq(config_validate(&back, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "auth_token"));
    free(text);
    c = config_default_params(); /* unset: printed as empty, which reloads as no auth */
    text = config_to_json(&c);
    o = json_loads(text, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "auth_token")), "");
    json_decref(o);
    free(text);
}
END_TEST

/* tls_cert/tls_key from the file, the flags and RESNETD_TLS_*, with the usual
 * precedence; validation wants both or neither, and says which one is missing.
 * The files themselves are read by the server (tests/integration/test_tls.c). */
START_TEST(tls_paths_sources_and_both_or_neither)
{
    clear_env();
    const char *path = write_tmp("{\"tls_cert\": \"/file/cert.pem\", \"tls_key\": \"/file/key.pem\"}");
    char cfgpath[64];
    snprintf(cfgpath, sizeof cfgpath, "%s", path);
    char *argv[] = {"serve", "--config", cfgpath, NULL};
    config_t c;
    rd_error_t err;
    ck_assert_msg(config_load(3, argv, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.tls_cert, "/file/cert.pem");
    ck_assert_str_eq(c.tls_key, "/file/key.pem");
    char *argv2[] = {"serve", "--config", cfgpath, "--tls-cert", "/flag/cert.pem",
                     "--tls-key=/flag/key.pem", NULL};
    ck_assert_msg(config_load(6, argv2, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.tls_cert, "/flag/cert.pem");
    ck_assert_str_eq(c.tls_key, "/flag/key.pem");
    setenv("RESNETD_TLS_CERT", "/env/cert.pem", 1);
    setenv("RESNETD_TLS_KEY", "/env/key.pem", 1);
    ck_assert_msg(config_load(6, argv2, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.tls_cert, "/env/cert.pem");
    ck_assert_str_eq(c.tls_key, "/env/key.pem");
    /* an empty variable turns TLS off for that key: half a config, refused */
    setenv("RESNETD_TLS_KEY", "", 1);
    ck_assert_int_eq(config_load(6, argv2, &c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "tls_cert is set but tls_key is empty"));
    setenv("RESNETD_TLS_CERT", "", 1); /* both empty: plain HTTP */
    ck_assert_msg(config_load(6, argv2, &c, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(c.tls_cert, "");
    ck_assert_str_eq(c.tls_key, "");
    clear_env();
    unlink(cfgpath);

    c = config_default_params();
    strcpy(c.tls_key, "key.pem");
    ck_assert_int_eq(config_validate(&c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "tls_key is set but tls_cert is empty"));
    strcpy(c.tls_cert, "cert.pem");
    ck_assert_int_eq(config_validate(&c, &err), RD_OK);
    c.tls_key[0] = 0;
    ck_assert_int_eq(config_validate(&c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "tls_cert is set but tls_key is empty"));

    /* a path too long for the field is refused, not truncated */
    static char big[CONFIG_STR_MAX + 8];
    memset(big, 'p', sizeof big - 1);
    char *argv3[] = {"serve", "--tls-cert", big, NULL};
    c = config_default_params();
    ck_assert_int_eq(config_apply_args(3, argv3, &c, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "tls_cert: value is"));
    expect_file_error("{\"tls_key\": 1}", RD_ERR_FORMAT, "tls_key: expected a string");

    /* --help names both */
    char *help = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&help, &n);
    config_print_keys(f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(help, "--tls-cert PATH"));
    ck_assert_ptr_nonnull(strstr(help, "env RESNETD_TLS_KEY"));
    free(help);
}
END_TEST

/* README.md's configuration table is what config_print_keys_markdown prints
 * from the key table, row for row: the table cannot drift from the code. On
 * a mismatch the generated table is in build/tests/unit/config_table.md. */
START_TEST(readme_table_is_the_key_table)
{
    char path[1024];
    const char *src = getenv("SRCDIR");
    snprintf(path, sizeof path, "%s/README.md", src ? src : "../..");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f, "cannot read %s", path);
    char *readme = NULL;
    size_t readme_len = 0;
    FILE *acc = open_memstream(&readme, &readme_len);
    char line[4096];
    bool in_table = false;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "| key | default | flag |", 24))
            in_table = true;
        else if (in_table && line[0] != '|')
            break;
        if (in_table)
            fputs(line, acc);
    }
    fclose(f);
    fclose(acc);
    char *gen = NULL;
    size_t gen_len = 0;
    FILE *g = open_memstream(&gen, &gen_len);
    config_print_keys_markdown(g);
    fclose(g);
    if (strcmp(readme, gen) != 0) {
        FILE *o = fopen("config_table.md", "w");
        if (o) {
            fputs(gen, o);
            fclose(o);
        }
    }
    ck_assert_msg(in_table, "no configuration table in README.md");
    ck_assert_msg(!strcmp(readme, gen),
                  "README.md's config table differs from the key table (see config_table.md)");
    free(readme);
    free(gen);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults_are_the_documented_ones);
    tcase_add_test(tc, file_sets_every_kind_of_value);
    tcase_add_test(tc, file_errors_name_the_key);
    tcase_add_test(tc, buffer_parses_like_a_file);
    tcase_add_test(tc, flags_in_both_spellings);
    tcase_add_test(tc, flag_errors);
    tcase_add_test(tc, positional_arguments_for_classify);
    tcase_add_test(tc, environment_overrides_flags_overrides_file);
    tcase_add_test(tc, validation_catches_inconsistencies);
    tcase_add_test(tc, shipped_config_file_loads);
    tcase_add_test(tc, json_round_trip_and_help_list_every_key);
    tcase_add_test(tc, auth_token_sources_and_alias);
    tcase_add_test(tc, auth_token_is_validated_and_never_printed);
    tcase_add_test(tc, tls_paths_sources_and_both_or_neither);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("readme");
    tcase_add_test(tr, readme_table_is_the_key_table);
    suite_add_tcase(s, tr);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
