/* image_decode.c - JPEG header probing and decoding to packed RGB through the
 * libjpeg API of libjpeg-turbo, with a progress monitor that bounds the work.
 * Accurate integer DCT and libjpeg's default fancy upsampling, so that a
 * full-size decode equals PIL's (PIL uses the same libjpeg-turbo with the same
 * settings) and what TurboJPEG's tjDecompress2 gave before. CMYK/YCCK follow
 * PIL: samples are taken as Adobe-inverted ("CMYK;I") and converted with PIL's
 * cmyk2rgb arithmetic.
 *
 * Why a monitor: the pixel limit bounds one pass over the image, but a
 * progressive or multi-scan JPEG may repeat its scans. A 9 KB arithmetic-coded
 * file claiming 40 Mpixel with ~250 AC scans cost 7.5 s of CPU (docs/
 * reliability.md). libjpeg calls the monitor once per iMCU row of input and
 * once per output call, so it counts scans and the blocks they code, checks the
 * per-image time budget and the caller's stop hook, and stops the decode with
 * a longjmp through the error manager (the documented way out of libjpeg).
 *
 * THREADS: each call owns its decompressor; nothing is shared. */
#include "image_internal.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Progress-monitor calls between two clock reads and stop-hook polls: one
 * call is one iMCU row (16 pixel rows at most), so 8 calls stay well under a
 * millisecond for any image within max_pixels. */
#define CHECK_EVERY 8

struct image_dec {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    rd_status_t status;       /* why the decode stopped (set before the longjmp) */
    bool stop_on_warning;     /* false while probing: tjDecompressHeader3 went on too */
    char msg[RD_ERROR_MSG_MAX];
    /* the monitor's state, for one decode */
    const image_limits_t *lim;
    int64_t budget_end_ns;    /* 0 = no time budget */
    int last_scan;
    uint64_t image_blocks;    /* blocks of all components: one "pass" */
    uint64_t scan_blocks;     /* blocks coded by the scans seen so far */
    unsigned ticks;
    /* the pixels of one decode, until handed to the caller */
    uint8_t *raw;             /* raw_w x raw_h, RGB or CMYK */
    int raw_w, raw_h;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct image_dec *dec_of(j_common_ptr cinfo)
{
    return (struct image_dec *)((char *)cinfo - offsetof(struct image_dec, cinfo));
}

static void stop_decode(struct image_dec *d, rd_status_t st)
{
    d->status = st;
    longjmp(d->jump, 1);
}

static void on_error_exit(j_common_ptr cinfo)
{
    struct image_dec *d = dec_of(cinfo);
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(d->msg, sizeof d->msg, "%s", text);
    stop_decode(d, RD_ERR_FORMAT);
}

/* Warnings (msg_level < 0) are corrupt or truncated data: libjpeg would go on
 * and return a partly grey image; we reject it, as TJFLAG_STOPONWARNING did.
 * Trace messages (>= 0) are ignored. */
static void on_emit_message(j_common_ptr cinfo, int msg_level)
{
    struct image_dec *d = dec_of(cinfo);
    if (msg_level >= 0 || !d->stop_on_warning)
        return;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(d->msg, sizeof d->msg, "corrupt data: %s", text);
    stop_decode(d, RD_ERR_FORMAT);
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print to stderr: the messages go into rd_error_t */
}

static uint64_t comp_blocks(const jpeg_component_info *c)
{
    return (uint64_t)c->width_in_blocks * (uint64_t)c->height_in_blocks;
}

/* A new scan has started: count it and the blocks it codes. */
static void count_scan(struct image_dec *d)
{
    j_decompress_ptr c = &d->cinfo;
    const image_limits_t *lim = d->lim;
    d->last_scan = c->input_scan_number;
    if (lim->max_scans > 0 && c->input_scan_number > lim->max_scans) {
        snprintf(d->msg, sizeof d->msg,
                 "JPEG has more than %d scans (max_jpeg_scans; real encoders write at most "
                 "a few dozen)", lim->max_scans);
        stop_decode(d, RD_ERR_LIMIT);
    }
    for (int i = 0; i < c->comps_in_scan && i < MAX_COMPS_IN_SCAN; i++)
        if (c->cur_comp_info[i])
            d->scan_blocks += comp_blocks(c->cur_comp_info[i]);
    if (lim->max_scan_work > 0 &&
        d->scan_blocks > (uint64_t)lim->max_scan_work * d->image_blocks) {
        snprintf(d->msg, sizeof d->msg,
                 "JPEG scans code the image more than %d times over (max_jpeg_scan_work)",
                 lim->max_scan_work);
        stop_decode(d, RD_ERR_LIMIT);
    }
}

static void on_progress(j_common_ptr cinfo)
{
    struct image_dec *d = dec_of(cinfo);
    if (d->cinfo.input_scan_number != d->last_scan)
        count_scan(d);
    if (++d->ticks % CHECK_EVERY != 0)
        return;
    if (d->budget_end_ns && now_ns() > d->budget_end_ns) {
        snprintf(d->msg, sizeof d->msg, "JPEG decode took longer than %lld ms (decode_budget_ms)",
                 (long long)d->lim->budget_ms);
        stop_decode(d, RD_ERR_LIMIT);
    }
    if (d->lim->stop) {
        rd_error_t why = {0};
        rd_status_t st = d->lim->stop(d->lim->stop_ctx, &why);
        if (st != RD_OK) {
            snprintf(d->msg, sizeof d->msg, "JPEG decode stopped: %.400s", why.msg);
            stop_decode(d, st);
        }
    }
}

void *image_dec_create(void)
{
    struct image_dec *volatile d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cinfo.err = jpeg_std_error(&d->jerr);
    d->jerr.error_exit = on_error_exit;
    d->jerr.emit_message = on_emit_message;
    d->jerr.output_message = on_output_message;
    d->progress.progress_monitor = on_progress;
    if (setjmp(d->jump)) { /* out of memory in jpeg_create_decompress */
        free(d);
        return NULL;
    }
    jpeg_create_decompress(&d->cinfo);
    return d;
}

void image_dec_destroy(void *dec)
{
    struct image_dec *d = dec;
    if (!d)
        return;
    jpeg_destroy_decompress(&d->cinfo);
    free(d);
}

/* TurboJPEG 2.1's getSubsamp: the sampling factors of each layout it names,
 * with 4:2:2 and 4:4:0 also recognised in their "2x2 luma" spelling, and the
 * K of CMYK/YCCK sampled like luma. -1 when none matches. */
static const int mcu_w[] = {8, 16, 16, 8, 8, 32}, mcu_h[] = {8, 8, 16, 8, 16, 8};
static const image_subsamp_t samp_of[] = {IMAGE_SAMP_444, IMAGE_SAMP_422, IMAGE_SAMP_420,
                                          IMAGE_SAMP_GRAY, IMAGE_SAMP_440, IMAGE_SAMP_411};

static bool chroma_match(j_decompress_ptr c, bool four, int href, int vref, int kh, int kv)
{
    for (int k = 1; k < c->num_components; k++) {
        bool is_k = four && k == 3;
        if (c->comp_info[k].h_samp_factor != (is_k ? kh : href) ||
            c->comp_info[k].v_samp_factor != (is_k ? kv : vref))
            return false;
    }
    return true;
}

static int subsamp_index(j_decompress_ptr c)
{
    if (c->num_components == 1 && c->jpeg_color_space == JCS_GRAYSCALE)
        return 3;
    bool four = c->jpeg_color_space == JCS_YCCK || c->jpeg_color_space == JCS_CMYK;
    for (int i = 0; i < 6; i++) {
        int size = i == 3 ? 1 : 3;
        if (c->num_components != size && !(four && size == 3 && c->num_components == 4))
            continue;
        int h0 = c->comp_info[0].h_samp_factor, v0 = c->comp_info[0].v_samp_factor;
        if (h0 == mcu_w[i] / 8 && v0 == mcu_h[i] / 8 &&
            chroma_match(c, four, 1, 1, mcu_w[i] / 8, mcu_h[i] / 8))
            return i;
        if (h0 == 2 && v0 == 2 && (i == 1 || i == 4) &&
            chroma_match(c, four, mcu_h[i] / 8, mcu_w[i] / 8, 2, 2))
            return i;
    }
    return -1;
}

static rd_status_t map_colorspace(J_COLOR_SPACE cs, image_colorspace_t *out)
{
    switch (cs) {
    case JCS_RGB: *out = IMAGE_CS_RGB; return RD_OK;
    case JCS_YCbCr: *out = IMAGE_CS_YCBCR; return RD_OK;
    case JCS_GRAYSCALE: *out = IMAGE_CS_GRAY; return RD_OK;
    case JCS_CMYK: *out = IMAGE_CS_CMYK; return RD_OK;
    case JCS_YCCK: *out = IMAGE_CS_YCCK; return RD_OK;
    default: return RD_ERR_FORMAT;
    }
}

/* Reads the header of jpeg into d->cinfo (jump target set by the caller). */
static int read_header(struct image_dec *d, const uint8_t *jpeg, size_t len)
{
    jpeg_mem_src(&d->cinfo, jpeg, (unsigned long)len);
    return jpeg_read_header(&d->cinfo, FALSE);
}

static rd_status_t fail(struct image_dec *d, rd_error_t *err, const char *what)
{
    jpeg_abort_decompress(&d->cinfo);
    return rd_error_set(err, d->status, "JPEG %s: %s", what, d->msg);
}

rd_status_t image_probe_with(void *dec, const uint8_t *jpeg, size_t len,
                             image_probe_t *out, rd_error_t *err)
{
    struct image_dec *d = dec;
    if (len == 0)
        return rd_error_set(err, RD_ERR_FORMAT, "JPEG header: empty input");
    if (len > (size_t)0xffffffffu)
        return rd_error_set(err, RD_ERR_LIMIT, "JPEG: %zu bytes is too large", len);
    d->cinfo.progress = NULL;
    d->stop_on_warning = false;
    if (setjmp(d->jump))
        return fail(d, err, "header");
    /* a tables-only stream (e.g. a file cut off before its frame header) */
    if (read_header(d, jpeg, len) != JPEG_HEADER_OK) {
        jpeg_abort_decompress(&d->cinfo);
        return rd_error_set(err, RD_ERR_FORMAT,
                            "JPEG header: no frame size (truncated or tables-only stream)");
    }
    j_decompress_ptr c = &d->cinfo;
    int samp = subsamp_index(c);
    image_colorspace_t cs = IMAGE_CS_YCBCR;
    rd_status_t cs_st = map_colorspace(c->jpeg_color_space, &cs);
    out->width = (int)c->image_width;
    out->height = (int)c->image_height;
    jpeg_abort_decompress(c);
    if (samp < 0)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "JPEG header: could not determine subsampling type");
    if (cs_st != RD_OK)
        return rd_error_set(err, RD_ERR_FORMAT, "JPEG header: unknown colour space");
    if (out->width < 1 || out->height < 1)
        return rd_error_set(err, RD_ERR_FORMAT, "JPEG header: invalid frame size");
    out->subsamp = samp_of[samp];
    out->colorspace = cs;
    return RD_OK;
}

rd_status_t image_probe(const uint8_t *jpeg, size_t len, image_probe_t *out,
                        rd_error_t *err)
{
    if (!jpeg || !out)
        return rd_error_set(err, RD_ERR_ARG, "image_probe: NULL argument");
    void *dec = image_dec_create();
    if (!dec)
        return rd_error_set(err, RD_ERR_NOMEM, "JPEG decompressor: out of memory");
    rd_status_t st = image_probe_with(dec, jpeg, len, out, err);
    image_dec_destroy(dec);
    return st;
}

rd_status_t image_check_limits(const image_probe_t *probe, const image_limits_t *lim,
                               rd_error_t *err)
{
    uint64_t pixels = (uint64_t)probe->width * (uint64_t)probe->height;
    if (lim && lim->max_pixels && pixels > lim->max_pixels)
        return rd_error_set(err, RD_ERR_LIMIT,
                            "JPEG is %dx%d = %llu pixels, the limit is %llu",
                            probe->width, probe->height, (unsigned long long)pixels,
                            (unsigned long long)lim->max_pixels);
    return RD_OK;
}

/* PIL reads 4-component JPEGs as "CMYK;I" (inverted) and converts with
 * r = nk - nk*c/255 (rounded as its MULDIV255), nk = 255 - k. With the raw,
 * inverted samples c' = 255 - c and k' = 255 - k that is nk = k'. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n_pixels)
{
    for (size_t i = 0; i < n_pixels; i++, cmyk += 4, rgb += 3) {
        int nk = cmyk[3];
        for (int c = 0; c < 3; c++) {
            int t = (255 - cmyk[c]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            rgb[c] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

/* Blocks of the component with this id in the frame, 0 if none has it. */
static uint64_t blocks_of_id(j_decompress_ptr c, int id)
{
    for (int i = 0; i < c->num_components; i++)
        if (c->comp_info[i].component_id == id)
            return comp_blocks(&c->comp_info[i]);
    return 0;
}

/* The scan limits checked from the bytes, before jpeg_start_decompress: a
 * progressive decode pre-zeroes a coefficient buffer of 2 bytes per sample
 * there (290 MB for a 6000x6000 CMYK file), so a file with too many scans is
 * refused before it costs that memory. Walks the marker segments (skipping
 * entropy-coded data up to the next marker that is neither a stuffed 0xFF00
 * nor a restart) and reads each SOS's component list. The progress monitor
 * counts again while decoding (the authority: libjpeg's own parse). */
static rd_status_t check_scans(struct image_dec *d, const uint8_t *p, size_t len,
                               rd_error_t *err)
{
    j_decompress_ptr c = &d->cinfo;
    const image_limits_t *lim = d->lim;
    int scans = 0;
    uint64_t blocks = 0;
    for (size_t i = 2; i + 1 < len;) {
        const uint8_t *ff = memchr(p + i, 0xff, len - i);
        if (!ff)
            break;
        i = (size_t)(ff - p);
        uint8_t m = i + 1 < len ? p[i + 1] : 0;
        if (m == 0x00 || m == 0xff || (m >= 0xd0 && m <= 0xd7) || m == 0x01 || m == 0xd8) {
            i += m == 0xff ? 1 : 2;
            continue;
        }
        if (m == 0xd9 || i + 3 >= len)
            break;
        size_t seg = (size_t)p[i + 2] << 8 | p[i + 3];
        if (m == 0xda && i + 4 < len) {
            if (++scans > lim->max_scans && lim->max_scans > 0)
                break; /* enough to refuse it */
            for (size_t k = 0; k < p[i + 4] && i + 5 + 2 * k < len; k++)
                blocks += blocks_of_id(c, p[i + 5 + 2 * k]);
        }
        i += 2 + seg;
    }
    if (lim->max_scans > 0 && scans > lim->max_scans)
        return rd_error_set(err, RD_ERR_LIMIT,
                            "JPEG decode: more than %d scans (max_jpeg_scans; real encoders "
                            "write at most a few dozen)", lim->max_scans);
    if (lim->max_scan_work > 0 && blocks > (uint64_t)lim->max_scan_work * d->image_blocks)
        return rd_error_set(err, RD_ERR_LIMIT,
                            "JPEG decode: its scans code the image %.1f times over, more than "
                            "max_jpeg_scan_work (%d)",
                            (double)blocks / (double)(d->image_blocks ? d->image_blocks : 1),
                            lim->max_scan_work);
    return RD_OK;
}

/* Output pixels kept around the part a caller asked for: fancy upsampling
 * reads one chroma sample beyond each luma pixel (two pixels at 4:2:0 or
 * 4:1:1, sixteen at most over an iMCU), and libjpeg treats the edges of a
 * cropped or skipped region as image edges, so the pixels within this margin
 * of them may differ from a full decode; the ones inside may not. */
#define PART_MARGIN 16

/* The part of the output to decode: [x0, x1) x [y0, y1) widened by the
 * margin and clipped to the output; the whole output when want is NULL. */
static void part_window(j_decompress_ptr c, const int *want, int *x0, int *y0, int *x1, int *y1)
{
    int w = (int)c->output_width, h = (int)c->output_height;
    *x0 = 0, *y0 = 0, *x1 = w, *y1 = h;
    if (!want)
        return;
    *x0 = want[0] - PART_MARGIN > 0 ? want[0] - PART_MARGIN : 0;
    *y0 = want[1] - PART_MARGIN > 0 ? want[1] - PART_MARGIN : 0;
    *x1 = want[2] + PART_MARGIN < w ? want[2] + PART_MARGIN : w;
    *y1 = want[3] + PART_MARGIN < h ? want[3] + PART_MARGIN : h;
}

/* The decode proper, between setjmp and the last libjpeg call: start (which
 * reads every scan of a progressive file), then only the rows and columns of
 * the part into d->raw (allocated here, freed by the caller, also after a
 * longjmp). jpeg_crop_scanline moves the left edge down to an iMCU boundary;
 * jpeg_skip_scanlines skips the IDCT and colour conversion of the rows above;
 * the rows below are never decoded (for a baseline file, not even read). */
static void decode_rows(struct image_dec *d, int denom, bool cmyk, const int *want,
                        image_part_t *part)
{
    j_decompress_ptr c = &d->cinfo;
    c->out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGB;
    c->scale_num = 1;
    c->scale_denom = (unsigned)denom;
    c->dct_method = JDCT_ISLOW;
    count_scan(d); /* the first scan's SOS was read with the header */
    jpeg_start_decompress(c);
    int x0, y0, x1, y1;
    part_window(c, want, &x0, &y0, &x1, &y1);
    *part = (image_part_t){.full_width = (int)c->output_width, .full_height = (int)c->output_height};
    if (x0 > 0 || x1 < (int)c->output_width) {
        JDIMENSION xoff = (JDIMENSION)x0, width = (JDIMENSION)(x1 - x0);
        jpeg_crop_scanline(c, &xoff, &width);
        x0 = (int)xoff;
    }
    part->x0 = x0;
    part->y0 = y0;
    d->raw_w = (int)c->output_width; /* the cropped width now */
    d->raw_h = y1 - y0;
    size_t stride = (size_t)d->raw_w * (cmyk ? 4 : 3);
    d->raw = malloc(stride * (size_t)d->raw_h);
    if (!d->raw) {
        snprintf(d->msg, sizeof d->msg, "out of memory for %dx%d pixels", d->raw_w, d->raw_h);
        stop_decode(d, RD_ERR_NOMEM);
    }
    if (y0 > 0 && jpeg_skip_scanlines(c, (JDIMENSION)y0) != (JDIMENSION)y0) {
        snprintf(d->msg, sizeof d->msg, "could not skip to row %d", y0);
        stop_decode(d, RD_ERR_FORMAT);
    }
    while ((int)c->output_scanline < y1) {
        JSAMPROW row = d->raw + (size_t)((int)c->output_scanline - y0) * stride;
        jpeg_read_scanlines(c, &row, 1);
    }
    if (y1 < (int)c->output_height)
        jpeg_abort_decompress(c); /* the rest is not needed: not even read */
    else
        jpeg_finish_decompress(c);
}

/* Reads the header again and checks it against the probe and the scan limits. */
static rd_status_t start_checked(struct image_dec *d, const uint8_t *jpeg, size_t len,
                                 const image_probe_t *probe, rd_error_t *err)
{
    if (read_header(d, jpeg, len) != JPEG_HEADER_OK) {
        jpeg_abort_decompress(&d->cinfo);
        return rd_error_set(err, RD_ERR_FORMAT, "JPEG decode: no frame header");
    }
    if ((int)d->cinfo.image_width != probe->width || (int)d->cinfo.image_height != probe->height) {
        jpeg_abort_decompress(&d->cinfo);
        return rd_error_set(err, RD_ERR_ARG, "JPEG decode: the probe is of another image");
    }
    d->image_blocks = 0;
    for (int i = 0; i < d->cinfo.num_components; i++)
        d->image_blocks += comp_blocks(&d->cinfo.comp_info[i]);
    rd_status_t st = check_scans(d, jpeg, len, err);
    if (st != RD_OK)
        jpeg_abort_decompress(&d->cinfo);
    return st;
}

static void monitor_reset(struct image_dec *d, const image_limits_t *lim)
{
    static const image_limits_t none = {0};
    d->lim = lim ? lim : &none;
    d->budget_end_ns = d->lim->budget_ms > 0 ? now_ns() + d->lim->budget_ms * 1000000 : 0;
    d->last_scan = 0;
    d->scan_blocks = 0;
    d->ticks = 0;
    d->cinfo.progress = &d->progress;
    d->stop_on_warning = true;
    d->raw = NULL;
}

rd_status_t image_decode_part_with(void *dec, const uint8_t *jpeg, size_t len,
                                   const image_probe_t *probe, int denom,
                                   const image_limits_t *lim, const int *want,
                                   image_rgb_t *out, image_part_t *part, rd_error_t *err)
{
    struct image_dec *d = dec;
    if (denom != 1 && denom != 2 && denom != 4 && denom != 8)
        return rd_error_set(err, RD_ERR_ARG, "JPEG decode: scale 1/%d unsupported", denom);
    bool cmyk = probe->colorspace == IMAGE_CS_CMYK || probe->colorspace == IMAGE_CS_YCCK;
    monitor_reset(d, lim);
    volatile rd_status_t st = RD_OK;
    if (setjmp(d->jump))
        st = fail(d, err, "decode");
    else if ((st = start_checked(d, jpeg, len, probe, err)) == RD_OK)
        decode_rows(d, denom, cmyk, want, part);
    d->cinfo.progress = NULL;
    size_t n_pixels = (size_t)d->raw_w * (size_t)d->raw_h;
    uint8_t *rgb = NULL;
    if (st == RD_OK && !cmyk) {
        rgb = d->raw; /* decoded as RGB: handed over as it is */
        d->raw = NULL;
    } else if (st == RD_OK && !(rgb = malloc(n_pixels * 3))) {
        st = rd_error_set(err, RD_ERR_NOMEM, "JPEG decode: %dx%d image", d->raw_w, d->raw_h);
    } else if (st == RD_OK) {
        cmyk_to_rgb(d->raw, rgb, n_pixels);
    }
    free(d->raw);
    d->raw = NULL;
    if (st != RD_OK)
        return st;
    *out = (image_rgb_t){.width = d->raw_w, .height = d->raw_h, .pixels = rgb};
    return RD_OK;
}

rd_status_t image_decode_with(void *dec, const uint8_t *jpeg, size_t len,
                              const image_probe_t *probe, int denom,
                              const image_limits_t *lim, image_rgb_t *out, rd_error_t *err)
{
    image_part_t whole;
    return image_decode_part_with(dec, jpeg, len, probe, denom, lim, NULL, out, &whole, err);
}

rd_status_t image_decode_rgb(const uint8_t *jpeg, size_t len, int denom,
                             const image_limits_t *lim, image_rgb_t *out,
                             rd_error_t *err)
{
    if (!jpeg || !out)
        return rd_error_set(err, RD_ERR_ARG, "image_decode_rgb: NULL argument");
    memset(out, 0, sizeof *out);
    image_limits_t defaults = image_default_limits();
    const image_limits_t *l = lim ? lim : &defaults;
    void *dec = image_dec_create();
    if (!dec)
        return rd_error_set(err, RD_ERR_NOMEM, "JPEG decompressor: out of memory");
    image_probe_t probe;
    rd_status_t st = image_probe_with(dec, jpeg, len, &probe, err);
    if (st == RD_OK)
        st = image_check_limits(&probe, l, err);
    if (st == RD_OK)
        st = image_decode_with(dec, jpeg, len, &probe, denom, l, out, err);
    image_dec_destroy(dec);
    return st;
}

void image_rgb_free(image_rgb_t *img)
{
    if (!img)
        return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}
