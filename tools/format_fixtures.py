#!/usr/bin/python3
"""PNG and WebP fixtures for resnetd's image pipeline, made by PIL at test time,
with their PIL + torchvision reference tensors.

    format_fixtures.py --out DIR [--source PHOTO]

Writes DIR/fx_png_*.png and DIR/fx_webp_*.webp (every PNG colour type and bit
depth that PIL reads: RGB, RGBA, gray, gray+alpha, palettes with and without
tRNS, 1/4-bit, 16-bit, interlaced; lossy and lossless WebP with and without alpha), and for
each DIR/<stem>.rgb.f32 and DIR/<stem>.bgr.f32 from preprocess_reference.py's
reference() (Image.open(path).convert("RGB"), Resize, CenterCrop, ...).
One deliberate exception: PIL 9.4 opens a 16-bit grayscale PNG as mode "I" and
convert("RGB") clips it to 255 (a nearly white picture); resnetd keeps the high
byte of every 16-bit sample, as PIL itself does for 16-bit RGB, RGBA and gray +
alpha, so fx_png_l16's reference is made from its high bytes.

It also writes the hostile files the decoders must refuse cheaply, listed in
DIR/hostile.txt as "name expected-status": an APNG, an animated WebP, a PNG and
a WebP whose headers claim 10^10 and 2.7*10^8 pixels, a PNG whose image data
inflates to 64 MiB for a 64x64 picture (a zlib bomb), and cut-off files.
PNGs PIL cannot write (16-bit colour, Adam7 interlacing, the lying headers) are written by
png_file() below, from the PNG specification.
"""
import argparse
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from preprocess_reference import reference  # noqa: E402


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_file(path, width, height, color_type, depth, idat):
    """A PNG with the given IHDR and an already compressed IDAT stream."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                + chunk(b"IEND", b""))


def rows(samples):
    """Filter type 0 before every row of an (h, w, c) big-endian array."""
    raw = samples.tobytes()
    stride = len(raw) // samples.shape[0]
    return b"".join(b"\0" + raw[y * stride:(y + 1) * stride] for y in range(samples.shape[0]))


def png_adam7(path, rgb8):
    """An interlaced (Adam7) 8-bit RGB PNG of rgb8 (PIL writes none)."""
    h, w, _ = rgb8.shape
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2))
    data = b"".join(rows(np.ascontiguousarray(rgb8[y0::dy, x0::dx]))
                    for x0, y0, dx, dy in passes if x0 < w and y0 < h)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data))
                + chunk(b"IEND", b""))


def png16(path, rgb8, channels, rng):
    """16-bit PNG whose high bytes are rgb8's channels (plus an alpha gradient)
    and whose low bytes are noise, so a decoder that rounds differs."""
    h, w, _ = rgb8.shape
    planes = {1: rgb8[:, :, :1], 2: None, 3: rgb8, 4: None}[channels]
    alpha = np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))[:, :, None]
    if channels == 2:
        planes = np.concatenate([rgb8[:, :, :1], alpha], axis=2)
    if channels == 4:
        planes = np.concatenate([rgb8, alpha], axis=2)
    hi = planes.astype(">u2") << 8
    samples = hi | rng.integers(0, 256, planes.shape).astype(">u2")
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    png_file(path, w, h, color_type, 16, zlib.compress(rows(samples.astype(">u2"))))


def with_alpha(img):
    """RGBA with an alpha that varies (0 in a corner, a gradient elsewhere), so
    compositing instead of dropping it shows."""
    w, h = img.size
    a = np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))
    a[: h // 4, : w // 4] = 0
    out = img.convert("RGBA")
    out.putalpha(Image.fromarray(a, "L"))
    return out


def fidelity_fixtures(src, out, rng):
    img = Image.open(src).convert("RGB")
    w, h = img.size
    rgba = with_alpha(img)
    gray = img.convert("L")
    gray_alpha = Image.merge("LA", (gray, rgba.getchannel("A")))
    pal = img.quantize(256)
    pal_trns = pal.copy()
    pal_trns.info["transparency"] = 0
    pal16 = img.quantize(16)
    made = []

    def save(name, im, **opts):
        path = os.path.join(out, name)
        im.save(path, **opts)
        made.append(path)

    save("fx_png_rgb.png", img)
    save("fx_png_rgba.png", rgba)
    save("fx_png_gray.png", gray)
    save("fx_png_gray_alpha.png", gray_alpha)
    save("fx_png_palette.png", pal)
    save("fx_png_palette_trns.png", pal_trns, transparency=0)
    save("fx_png_palette_4bit.png", pal16, bits=4)
    save("fx_png_1bit.png", gray.convert("1"))
    save("fx_png_tiny.png", img.resize((37, 23), Image.Resampling.BOX))
    save("fx_png_rgb_trns.png", img, transparency=(0, 0, 0))
    pixels = np.asarray(img)
    # 1000 spare bytes after the rows: sloppy, not a bomb; PIL reads it
    small = np.asarray(gray.resize((64, 48), Image.Resampling.BOX))[:, :, None]
    png_file(os.path.join(out, "fx_png_spare_bytes.png"), 64, 48, 0, 8,
             zlib.compress(rows(small) + b"\0" * 1000))
    made.append(os.path.join(out, "fx_png_spare_bytes.png"))
    # odd sizes, so that every Adam7 pass has a ragged edge
    png_adam7(os.path.join(out, "fx_png_interlaced.png"), pixels[5:5 + 333, 3:3 + 501])
    made.append(os.path.join(out, "fx_png_interlaced.png"))
    for name, channels in (("fx_png_rgb16.png", 3), ("fx_png_rgba16.png", 4),
                           ("fx_png_la16.png", 2)):
        png16(os.path.join(out, name), pixels, channels, rng)
        made.append(os.path.join(out, name))
    png16(os.path.join(out, "fx_png_l16.png"), pixels, 1, rng)
    save("fx_webp_lossy.webp", img, quality=90)
    save("fx_webp_lossless.webp", img, lossless=True)
    save("fx_webp_alpha.webp", rgba, quality=90)
    save("fx_webp_alpha_lossless.webp", rgba, lossless=True, exact=True)
    save("fx_webp_gray.webp", gray.convert("RGB"), quality=80)
    for path in made:
        reference(path, 256, (224, 224), out)
    # fx_png_l16: PIL's own reading clips, so the reference is its high byte
    ref_dir = os.path.join(out, "l16_reference")
    os.makedirs(ref_dir, exist_ok=True)
    l16 = np.asarray(Image.open(os.path.join(out, "fx_png_l16.png")), dtype=np.int64)
    assert l16.max() > 255, "PIL no longer reads 16-bit gray as 16-bit"
    high = Image.fromarray((l16 >> 8).astype(np.uint8), "L")
    high.save(os.path.join(ref_dir, "fx_png_l16.png"))
    reference(os.path.join(ref_dir, "fx_png_l16.png"), 256, (224, 224), out)


def webp_header_only(path, width, height):
    """A lossless WebP whose VP8L header claims width x height, with no data."""
    bits = (width - 1) | (height - 1) << 14
    vp8l = b"\x2f" + struct.pack("<I", bits) + b"\0" * 11
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def hostile_fixtures(src, out):
    img = Image.open(src).convert("RGB").resize((96, 72), Image.Resampling.BOX)
    other = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    listed = []
    path = os.path.join(out, "fx_apng.png")
    img.save(path, save_all=True, append_images=[other], duration=100, loop=0)
    listed.append(("fx_apng.png", "unsupported"))
    path = os.path.join(out, "fx_anim.webp")
    img.save(path, save_all=True, append_images=[other], duration=100, loop=0)
    listed.append(("fx_anim.webp", "unsupported"))
    # 100000 x 100000 RGB: 3e10 bytes of pixels; the stream holds one row
    png_file(os.path.join(out, "fx_huge.png"), 100000, 100000, 2, 8,
             zlib.compress(b"\0" * 300001))
    listed.append(("fx_huge.png", "limit"))
    webp_header_only(os.path.join(out, "fx_huge.webp"), 16383, 16383)
    listed.append(("fx_huge.webp", "limit"))
    # a 64x64 gray picture (4160 bytes of rows) whose stream inflates to 64 MiB
    bomb = zlib.compressobj(9)
    parts = [bomb.compress(b"\0" * (1 << 20)) for _ in range(64)]
    png_file(os.path.join(out, "fx_bomb.png"), 64, 64, 0, 8, b"".join(parts) + bomb.flush())
    listed.append(("fx_bomb.png", "format"))
    for name in ("fx_png_rgb.png", "fx_webp_lossy.webp"):
        data = open(os.path.join(out, name), "rb").read()
        cut = "fx_cut_" + name.split("_", 1)[1]
        with open(os.path.join(out, cut), "wb") as f:
            f.write(data[: len(data) // 2])
        listed.append((cut, "format"))
    with open(os.path.join(out, "hostile.txt"), "w") as f:
        for name, status in listed:
            f.write(f"{name} {status}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--source", default="/usr/share/darknet/data/dog.jpg")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(16)
    fidelity_fixtures(args.source, args.out, rng)
    hostile_fixtures(args.source, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
