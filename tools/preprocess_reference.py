#!/usr/bin/python3
"""Reference preprocessing for resnetd's image pipeline: PIL + torchvision.

For each image writes OUT/<stem>.rgb.f32 (torchvision: Resize, CenterCrop,
ToTensor, Normalize with ImageNet mean/std) and OUT/<stem>.bgr.f32 (Caffe/Keras:
Resize, CenterCrop, 0..255 pixels, RGB->BGR, minus [103.939,116.779,123.68]),
raw little-endian float32 laid out [3][H][W].

--make-fixtures DIR writes PIL-encoded JPEG variants of a source photo
(grayscale, CMYK, progressive, 4:4:4, 4:2:2, 4:2:0, odd and tiny sizes) so the
C pipeline can be checked on every kind of JPEG PIL produces.

Run with /usr/bin/python3 (Debian's torch/torchvision/PIL).
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

TV_MEAN = [0.485, 0.456, 0.406]
TV_STD = [0.229, 0.224, 0.225]
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]


def parse_size(text):
    if "x" in text:
        h, w = text.split("x")
        return int(h), int(w)
    return int(text), int(text)


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def reference(path, resize, size, out_dir):
    from torchvision import transforms as T

    img = Image.open(path).convert("RGB")  # what torchvision users do
    geometry = T.Compose([T.Resize(resize), T.CenterCrop(size)])
    cropped = geometry(img)
    rgb = T.Compose([T.ToTensor(), T.Normalize(TV_MEAN, TV_STD)])(cropped).numpy()
    pixels = T.PILToTensor()(cropped).numpy().astype(np.float32)
    bgr = pixels[::-1] - np.array(CAFFE_MEAN_BGR, np.float32).reshape(3, 1, 1)
    for name, tensor in (("rgb", rgb), ("bgr", bgr)):
        target = os.path.join(out_dir, f"{stem(path)}.{name}.f32")
        np.ascontiguousarray(tensor, dtype="<f4").tofile(target)


def make_fixtures(source, out_dir):
    img = Image.open(source).convert("RGB")
    w, h = img.size
    odd = img.crop((3, 5, min(w, 3 + 501), min(h, 5 + 333)))
    variants = {
        "fx_gray": (img.convert("L"), {}),
        "fx_cmyk": (img.convert("CMYK"), {}),
        "fx_progressive": (img, {"progressive": True}),
        "fx_444": (img, {"subsampling": 0}),
        "fx_422": (img, {"subsampling": 1}),
        "fx_420": (img, {"subsampling": 2}),
        "fx_odd_420": (odd, {"subsampling": 2}),
        "fx_portrait": (odd.transpose(Image.Transpose.ROTATE_90), {}),
        "fx_tiny": (img.resize((37, 23), Image.Resampling.BOX), {}),
        # big enough for 1/4 and 1/8 DCT scaling
        "fx_large": (img.resize((4 * w, 4 * h), Image.Resampling.BICUBIC), {}),
    }
    for name, (im, options) in variants.items():
        im.save(os.path.join(out_dir, name + ".jpg"), quality=92, **options)
        print(os.path.join(out_dir, name + ".jpg"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="folder for the .f32 tensors")
    ap.add_argument("--resize", type=int, default=256, help="shorter side before the crop")
    ap.add_argument("--size", default="224", help="crop: N or HxW")
    ap.add_argument("--make-fixtures", metavar="DIR", help="write JPEG fixtures to DIR")
    ap.add_argument("--source", default="/usr/share/darknet/data/dog.jpg",
                    help="photo the fixtures are made from")
    ap.add_argument("images", nargs="*")
    args = ap.parse_args()
    if args.make_fixtures:
        make_fixtures(args.source, args.make_fixtures)
    if args.images:
        if not args.out:
            ap.error("--out is required with images")
        for path in args.images:
            reference(path, args.resize, parse_size(args.size), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
