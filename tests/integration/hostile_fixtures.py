"""hostile_fixtures.py - the crafted JPEGs of test_hostile_load.py, made in
the run with PIL and jpegtran: scan-heavy 6000x6000 pictures (hundreds of
scans, or few scans that code the image many times over), a slow but
standard progressive one, and the multipart body that carries them.
`test_hostile_load.py --make DIR` writes them alone."""
import os
import subprocess

from server_harness import multipart as multipart_body


def jpeg_segments(data):
    """(start, end) of each marker segment after SOI; an SOS segment runs to
    the end of its entropy-coded data (the next marker that is neither a
    stuffed 0xFF00 nor a restart)."""
    i, out = 2, []
    while i + 1 < len(data):
        if data[i] != 0xFF:
            raise ValueError(f"no marker at {i}")
        m = data[i + 1]
        if m == 0xD9:
            out.append((i, i + 2))
            break
        j = i + 2 + (data[i + 2] << 8 | data[i + 3])
        if m == 0xDA:
            while not (data[j] == 0xFF and data[j + 1] != 0 and not 0xD0 <= data[j + 1] <= 0xD7):
                j += 1
        out.append((i, j))
        i = j
    return out


def make_scan_heavy(path, mode, arithmetic, repeats, size=6000):
    """A flat size x size 4:4:4 JPEG (mode RGB or CMYK) with one DC scan and
    `repeats` copies of its per-component AC scans. Repeating a first AC scan
    (Ah = Al = 0) is a progression libjpeg accepts without a warning. Returns
    the scan count."""
    from PIL import Image
    colour = (120, 130, 140) if mode == "RGB" else (10, 20, 30, 40)
    base, script, coded = path + ".base.jpg", path + ".scans", path + ".coded.jpg"
    Image.new(mode, (size, size), colour).save(base, quality=90, subsampling=0)
    ncomp = len(colour)
    with open(script, "w") as f:
        f.write("%s: 0-0, 0, 0;\n" % ",".join(map(str, range(ncomp))))
        for c in range(ncomp):
            f.write(f"{c}: 1-63, 0, 0;\n")
    subprocess.run(["jpegtran"] + (["-arithmetic"] if arithmetic else []) +
                   ["-scans", script, "-outfile", coded, base], check=True)
    data = open(coded, "rb").read()
    segs = jpeg_segments(data)
    sos = [k for k, (a, _) in enumerate(segs) if data[a + 1] == 0xDA]
    head = data[:segs[sos[0]][1]]               # headers and the DC scan
    tail = data[segs[sos[0]][1]:segs[-1][0]]    # the AC scans with their tables
    with open(path, "wb") as f:
        f.write(head + tail * repeats + b"\xff\xd9")
    for p in (base, script, coded):
        os.unlink(p)
    return 1 + ncomp * repeats


ATTACKS = [  # name, mode, arithmetic, repeats, the limit its refusal must name
    ("arith-ycc-481", "RGB", True, 160, "max_jpeg_scans"),
    ("huff-ycc-481", "RGB", False, 160, "max_jpeg_scans"),
    ("arith-cmyk-481", "CMYK", True, 120, "max_jpeg_scans"),
    ("huff-ycc-61", "RGB", False, 20, "max_jpeg_scan_work"),
]


def make_slow(folder):
    """A standard progressive (10 scans), arithmetic-coded flat 6000x6000: accepted."""
    from PIL import Image
    flat, path = os.path.join(folder, "flat.jpg"), os.path.join(folder, "slow.jpg")
    Image.new("RGB", (6000, 6000), (120, 130, 140)).save(flat, quality=90, subsampling=0)
    subprocess.run(["jpegtran", "-progressive", "-arithmetic", "-outfile", path, flat], check=True)
    os.unlink(flat)
    return open(path, "rb").read()


def multipart(parts):
    """(body, content type) of a multipart upload of the JPEGs in parts."""
    boundary = "resnetdhostile7c1e"
    body = multipart_body([("img%d" % i, "%d.jpg" % i, "image/jpeg", p) for i, p in enumerate(parts)],
                          boundary)
    return body, "multipart/form-data; boundary=" + boundary


def make_all(folder):
    out = []
    for name, mode, arith, repeats, limit in ATTACKS:
        path = os.path.join(folder, name + ".jpg")
        scans = make_scan_heavy(path, mode, arith, repeats)
        print(f"  {name}.jpg: {os.path.getsize(path)} bytes, {scans} scans", flush=True)
        out.append((name, path, limit))
    return out


# ---- the server ------------------------------------------------------------
