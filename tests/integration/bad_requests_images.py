"""bad_requests_images.py - test_bad_requests.py's image cases: JPEGs
truncated, patched, re-encoded (CMYK, arithmetic, progressive) and random
bytes, other formats, content types, multipart bodies and topk, all on
/classify; and the JPEG material they are made from."""
import base64
import io
import os
import struct
import subprocess

from bad_requests_wire import (Fail, INFER, KSERVE, NESTED, OK, PHOTOS, Photos, classify_ok,
                               multipart, post, top1)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sof_offset(jpeg):
    """Offset of the first SOFn marker's segment (the FF byte)."""
    i = 2
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            raise Fail("JPEG marker walk lost at %d" % i)
        marker = jpeg[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB):
            return i
        i += 2 + struct.unpack(">H", jpeg[i + 2:i + 4])[0]
    raise Fail("no SOF marker")


def sos_end(jpeg):
    """Offset just past the first SOS marker's segment (where the scan data starts)."""
    i = 2
    while i + 4 <= len(jpeg):
        length = struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        if jpeg[i + 1] == 0xDA:
            return i + 2 + length
        i += 2 + length
    raise Fail("no SOS marker")


def patch_sof(jpeg, width=None, height=None, precision=None, components=None):
    i = sof_offset(jpeg)
    b = bytearray(jpeg)
    if precision is not None:
        b[i + 4] = precision
    if height is not None:
        b[i + 5:i + 7] = struct.pack(">H", height)
    if width is not None:
        b[i + 7:i + 9] = struct.pack(">H", width)
    if components is not None:
        b[i + 9] = components
    return bytes(b)


def pil_image(mode, size, fmt, **kw):
    from PIL import Image
    img = Image.open(os.path.join(PHOTOS, "dog.jpg")).convert("RGB")
    if size:
        img = img.resize(size)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg_tool(args, data, tmp):
    """Runs jpegtran/cjpeg/djpeg on data (a file in tmp) and returns stdout."""
    src = os.path.join(tmp, "in.bin")
    with open(src, "wb") as f:
        f.write(data)
    out = subprocess.run(args + [src], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if out.returncode != 0:
        raise Fail("%s failed: %s" % (args[0], out.stderr.decode(errors="replace")))
    return out.stdout



def load_photos(tools):
    """Reads the photos and makes the progressive and arithmetic-coded versions of dog.jpg and a
    GIF (a format resnetd does not decode; PNG and WebP it does)."""
    dog, eagle, person = (read(os.path.join(PHOTOS, p + ".jpg")) for p in ("dog", "eagle", "person"))
    return Photos(dog, eagle, person,
                  progressive=jpeg_tool(["jpegtran", "-progressive"], dog, tools),
                  arith=jpeg_tool(["jpegtran", "-arithmetic"], dog, tools),
                  gif=pil_image("P", (64, 48), "GIF"))



def truncated_jpegs(add, photos):
    """Truncated JPEGs at many offsets (baseline and progressive): 400."""
    for label, img in (("dog", photos.dog), ("eagle", photos.eagle), ("person", photos.person),
                       ("dog-progressive", photos.progressive)):
        n = len(img)
        offsets = sorted({1, 2, 3, 4, 11, 20, 100, 300, 600, 1000, n // 8, n // 3, n // 2, 2 * n // 3,
                          n - 1000, n - 3})
        for off in offsets:
            add("truncated_jpeg", "%s[:%d]" % (label, off), 400, NESTED, post("/classify", img[:off]))


def random_bytes(add, rng):
    """Seeded random bytes, bare and behind a JPEG SOI: 400."""
    for length in (1, 2, 5, 16, 100, 1000, 4096, 20000, 100000, 1000000):
        blob = bytes(rng.getrandbits(8) for _ in range(min(length, 4096)))
        blob = (blob * (length // len(blob) + 1))[:length]
        add("random_bytes", "random %d" % length, 400, NESTED, post("/classify", blob))
    for length in (2, 3, 10, 500, 5000):
        blob = b"\xff\xd8" + bytes(rng.getrandbits(8) for _ in range(length))
        add("random_bytes", "SOI + random %d" % length, 400, NESTED, post("/classify", blob))
    for length in (1, 64, 3000):
        blob = bytes(rng.getrandbits(8) for _ in range(length))
        add("random_bytes", "random %d as octet-stream" % length, 400, NESTED,
            post("/classify", blob, "application/octet-stream"))


def wrong_formats(add, photos):
    """Other formats labelled JPEG, and empty bodies: 400."""
    formats = {
        "PNG with a zeroed IHDR": b"\x89PNG\r\n\x1a\n" + bytes(25),
        "GIF": pil_image("P", (64, 48), "GIF"),
        "BMP": pil_image("RGB", (64, 48), "BMP"),
        "TIFF": pil_image("RGB", (64, 48), "TIFF"),
        "PPM": pil_image("RGB", (64, 48), "PPM"),
        "PNG signature only": b"\x89PNG\r\n\x1a\n",
        "GIF89a header only": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        "JSON": b'{"image":"dog.jpg"}',
        "HTML": b"<html><body>not a jpeg</body></html>",
        "JPEG base64 text": base64.b64encode(photos.dog[:3000]),
    }
    for name, data in formats.items():
        for ctype in ("image/jpeg", "image/pjpeg"):
            add("wrong_format", "%s as %s" % (name, ctype), 400, NESTED, post("/classify", data, ctype))
    add("empty_body", "zero-length image/jpeg", 400, NESTED, post("/classify", b""))
    add("empty_body", "zero-length octet-stream", 400, NESTED, post("/classify", b"", "application/octet-stream"))
    add("empty_body", "zero-length KServe infer", 400, KSERVE, post(INFER, b"", "application/json"))
    add("empty_body", "zero-length multipart", 400, NESTED,
        post("/classify", b"", "multipart/form-data; boundary=xyz"))


def odd_images(add, photos, tools):
    """Odd but valid images (the README documents them as supported: 200)."""
    dog, arith = photos.dog, photos.arith
    add("odd_image", "1x1 RGB", 200, OK, post("/classify", pil_image("RGB", (1, 1), "JPEG")), classify_ok)
    add("odd_image", "1x1 grayscale", 200, OK, post("/classify", pil_image("L", (1, 1), "JPEG")), classify_ok)
    add("odd_image", "1x1 CMYK", 200, OK, post("/classify", pil_image("CMYK", (1, 1), "JPEG")), classify_ok)
    add("odd_image", "CMYK (PIL, Adobe-inverted)", 200, OK,
        post("/classify", pil_image("CMYK", None, "JPEG", quality=95)), classify_ok)
    add("odd_image", "2000x1 strip", 200, OK, post("/classify", pil_image("RGB", (2000, 1), "JPEG")), classify_ok)
    arith_prog = jpeg_tool(["jpegtran", "-arithmetic", "-progressive"], dog, tools)
    ppm = jpeg_tool(["djpeg", "-ppm"], dog, tools)
    arith_cjpeg = jpeg_tool(["cjpeg", "-arithmetic", "-quality", "90"], ppm, tools)
    # jpegtran transcodes losslessly (same DCT coefficients), so the answer must not change.
    add("odd_image", "arithmetic-coded (jpegtran)", 200, OK, post("/classify", arith), top1("malamute"))
    add("odd_image", "arithmetic progressive (jpegtran)", 200, OK, post("/classify", arith_prog), top1("malamute"))
    add("odd_image", "arithmetic-coded (cjpeg)", 200, OK, post("/classify", arith_cjpeg), classify_ok)
    for frac in (3, 2):
        add("odd_image", "arithmetic truncated at 1/%d" % frac, 400, NESTED,
            post("/classify", arith[:len(arith) // frac]))


def patched_headers(add, photos):
    """JPEGs with patched headers: huge frames (413) and broken markers (400)."""
    dog = photos.dog
    for w, h in ((65500, 65500), (65500, 1000), (1000, 65500), (10000, 5000)):
        add("patched_header", "SOF %dx%d" % (w, h), 413, NESTED, post("/classify", patch_sof(dog, w, h)))
        # the header is complete up to the scan data: the size check comes first
        add("patched_header", "SOF %dx%d, no scan data" % (w, h), 413, NESTED,
            post("/classify", patch_sof(dog, w, h)[:sos_end(dog)]))
    # cut before the scan header: a truncated JPEG, whatever its frame says
    add("patched_header", "SOF 65500x65500, cut before SOS", 400, NESTED,
        post("/classify", patch_sof(dog, 65500, 65500)[:sof_offset(dog) + 40]))
    add("patched_header", "SOF 65500x65500 progressive", 413, NESTED,
        post("/classify", patch_sof(photos.progressive, 65500, 65500)))
    add("patched_header", "SOF 65500x65500 arithmetic", 413, NESTED,
        post("/classify", patch_sof(photos.arith, 65500, 65500)))
    for p in (12, 16, 0, 7):
        add("patched_header", "SOF precision %d" % p, 400, NESTED, post("/classify", patch_sof(dog, precision=p)))
    add("patched_header", "SOF 0x0", 400, NESTED, post("/classify", patch_sof(dog, 0, 0)))
    add("patched_header", "SOF 0 components", 400, NESTED, post("/classify", patch_sof(dog, components=0)))
    add("patched_header", "SOF 7 components", 400, NESTED, post("/classify", patch_sof(dog, components=7)))
    add("patched_header", "SOI only", 400, NESTED, post("/classify", b"\xff\xd8"))
    add("patched_header", "SOI + EOI", 400, NESTED, post("/classify", b"\xff\xd8\xff\xd9"))
    add("patched_header", "no SOI", 400, NESTED, post("/classify", dog[2:]))
    add("patched_header", "SOF marker length 0", 400, NESTED,
        post("/classify", dog[:sof_offset(dog) + 2] + b"\x00\x00" + dog[sof_offset(dog) + 4:]))


def content_types(add, photos):
    """Wrong or missing Content-Type on /classify: 415."""
    for ctype in ("text/plain", "application/json", "image/bmp", "image/gif", "image/jpegx",
                  "multipart/mixed; boundary=x", "application/x-www-form-urlencoded", "*/*", "", ";"):
        add("content_type", "Content-Type %r" % ctype, 415, NESTED, post("/classify", photos.dog, ctype))
    add("content_type", "no Content-Type", 415, NESTED, post("/classify", photos.dog, None))


def multipart_cases(add, photos):
    """Multipart: broken or missing boundaries, bad parts, thousands of parts."""
    mp = "multipart/form-data; boundary=bAdReQuEsT-b0undary"
    dog, gif = photos.dog, photos.gif
    add("multipart", "no boundary parameter", 415, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", dog)]), "multipart/form-data"))
    add("multipart", "empty boundary parameter", 415, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", dog)]), "multipart/form-data; boundary="))
    add("multipart", "boundary not in the body", 400, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", dog)]), "multipart/form-data; boundary=other"))
    add("multipart", "body is junk", 400, NESTED, post("/classify", b"junk junk junk", mp))
    add("multipart", "body is a bare JPEG", 400, NESTED, post("/classify", dog, mp))
    add("multipart", "only a topk field", 400, NESTED, post("/classify", multipart([("topk", None, None, b"3")]), mp))
    add("multipart", "one GIF part", 400, NESTED, post("/classify", multipart([("a", "a.gif", "image/gif", gif)]), mp))
    add("multipart", "one truncated JPEG part", 400, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", dog[:5000])]), mp))
    add("multipart", "empty part", 400, NESTED, post("/classify", multipart([("a", "a.jpg", "image/jpeg", b"")]), mp))
    add("multipart", "two bad parts", 400, NESTED,
        post("/classify", multipart([("a", "a.gif", None, gif), ("b", "b.jpg", None, b"\xff\xd8")]), mp))
    add("multipart", "plain text field", 400, NESTED, post("/classify", multipart([("note", None, None, b"hello")]), mp))
    add("multipart", "five images > max 4", 413, NESTED,
        post("/classify", multipart([("i%d" % i, "%d.jpg" % i, "image/jpeg", b"\xff\xd8") for i in range(5)]), mp))
    for n in (1000, 5000):
        add("multipart", "%d tiny parts" % n, 413, NESTED,
            post("/classify", multipart([("p", "p.jpg", None, b"x")] * n), mp))
    add("multipart", "3000 topk fields", 413, NESTED,
        post("/classify", multipart([("topk", None, None, b"1")] * 3000), mp))
    add("multipart", "3000 empty parts", 413, NESTED,
        post("/classify", multipart([("p", None, None, b"")] * 3000), mp))
    # issue 15: parameter names are case-insensitive, the media type is matched whole,
    # an empty part gets a message naming it, a non-UTF-8 file name is shown with U+FFFD
    one = multipart([("a", "a.jpg", "image/jpeg", dog)])
    add("multipart", "BOUNDARY= in upper case", 200, OK,
        post("/classify", one, "Multipart/Form-Data; BOUNDARY=bAdReQuEsT-b0undary"), top1("malamute"))
    add("multipart", "multipart/form-dataX", 415, NESTED,
        post("/classify", one, "multipart/form-dataX; boundary=bAdReQuEsT-b0undary"))

    def says_empty(resp):
        msg = resp.json()["results"][0]["error"]["message"]
        if "empty" not in msg or "NULL" in msg:
            raise Fail("empty part answered %r" % msg)
    add("multipart", "empty part says so", 400, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", b"")]), mp), says_empty)

    def replaced_name(resp):
        top1("malamute")(resp)
        got = resp.json()["results"][0].get("filename")
        if got != "\ufffdt\ufffd.jpg":
            raise Fail("non-UTF-8 filename came back as %r" % (got,))
    add("multipart", "non-UTF-8 filename", 200, OK,
        post("/classify", multipart([("a", "\udce9t\udcff.jpg", "image/jpeg", dog)]), mp), replaced_name)
    for v in (b"0", b"-1", b"1001", b"abc", b"9" * 40, b"1.5"):
        add("multipart", "topk field %r" % v, 400, NESTED,
            post("/classify", multipart([("topk", None, None, v), ("a", "a.jpg", "image/jpeg", dog)]), mp))


def topk_cases(add, photos):
    """Invalid topk in the query string: 400."""
    for q in ("0", "-1", "-99999999999", "1001", "99999999999999999999999", "abc", "", "1.5", "1e3",
              "0x10", "%205", "%2B5", "5%20", "3abc", "%00"):
        add("topk", "topk=%s" % q, 400, NESTED, post("/classify?topk=" + q, photos.dog))
