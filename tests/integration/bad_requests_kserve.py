"""bad_requests_kserve.py - test_bad_requests.py's KServe v2 cases: model
names in the URL, JSON bodies (malformed, wrong tensors, FP32 values) and the
binary tensor extension (headers, lengths, BYTES elements)."""
import base64
import json
import struct

from bad_requests_images import patch_sof
from bad_requests_wire import INFER, KSERVE, MAX_IMAGES, NESTED, T, post, request


def model_names(add):
    """Unknown model names on the KServe routes: 404."""
    for name in ("nope", "resnet50", "RESNET50-IMAGENET", "{model}x", "x" * 120):
        add("model_name", "infer on %s" % name[:20], 404, KSERVE,
            post("/v2/models/%s/infer" % name, b'{"inputs":[]}', "application/json"))
    add("model_name", "metadata of nope", 404, KSERVE, lambda: request("GET", "/v2/models/nope"))
    add("model_name", "ready of nope", 404, KSERVE, lambda: request("GET", "/v2/models/nope/ready"))
    # A name longer than the route's segment buffer matches no route: a routing 404.
    add("model_name", "infer on a 300-character name", 404, NESTED,
        post("/v2/models/%s/infer" % ("y" * 300), b"{}", "application/json"))


# ---------------------------------------------------------------- KServe cases

def kjson(add, doc, status, name, cat="kserve_json"):
    """Adds a KServe JSON infer case; doc is raw bytes or a document to serialize."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    add(cat, name, status, KSERVE, post(INFER, body, "application/json"))


def shape4():
    """The model's NCHW input shape for one image."""
    return [1, 3, T.input_hw[0], T.input_hw[1]]


def image_in(dog, **kw):
    """A KServe document with one BYTES "image" input (100 bytes of dog.jpg), fields overridden by kw."""
    return {"inputs": [dict({"name": "image", "datatype": "BYTES", "shape": [1],
                             "data": [base64.b64encode(dog[:100]).decode()]}, **kw)]}


def fp32_in(**kw):
    """A KServe document with one FP32 "input" tensor (data [0]), fields overridden by kw."""
    return {"inputs": [dict({"name": "input", "datatype": "FP32", "shape": shape4(), "data": [0]}, **kw)]}


def kserve_json(add, photos):
    """KServe JSON: malformed, truncated or badly structured documents (400) and oversized batches (413)."""
    malformed_json(add, photos.gif)
    dog, gif, size = photos.dog, photos.gif, T.input_hw
    kjson(add, {}, 400, "{}")
    kjson(add, {"inputs": {}}, 400, "inputs is an object")
    kjson(add, {"inputs": []}, 400, "inputs empty")
    kjson(add, {"inputs": image_in(dog)["inputs"] * 2}, 400, "two inputs")
    kjson(add, {"inputs": [{"datatype": "BYTES", "shape": [1], "data": []}]}, 400, "input without name")
    kjson(add, {"inputs": [{"name": "image", "shape": [1], "data": []}]}, 400, "input without datatype")
    kjson(add, image_in(dog, datatype=7), 400, "datatype is a number")
    kjson(add, {"inputs": [5]}, 400, "input is a number")
    kjson(add, dict(image_in(dog), outputs={}), 400, "outputs is an object")
    kjson(add, dict(image_in(dog), outputs=[]), 400, "outputs empty")
    kjson(add, dict(image_in(dog), outputs=[{"name": "logits"}] * 3), 400, "three outputs")
    kjson(add, dict(image_in(dog), outputs=[{"name": "probabilities"}] * 2), 400, "output twice")
    kjson(add, dict(image_in(dog), outputs=[{"name": "softmax"}]), 400, "unknown output")
    kjson(add, dict(image_in(dog), outputs=[{}]), 400, "output without name")
    kjson(add, fp32_in(data=None), 400, "FP32 without data")
    kjson(add, fp32_in(data="AAAA"), 400, "FP32 data is a string")
    kjson(add, image_in(dog, data=[base64.b64encode(gif).decode()]), 400, "BYTES: a GIF")
    kjson(add, image_in(dog, data=[base64.b64encode(dog[:2000]).decode()]), 400, "BYTES: truncated JPEG")
    kjson(add, image_in(dog, data=["!!!not base64!!!"]), 400, "BYTES: invalid base64")
    kjson(add, image_in(dog, data=["QUJD="]), 400, "BYTES: bad base64 padding")
    kjson(add, image_in(dog, data=[""]), 400, "BYTES: empty string")
    kjson(add, image_in(dog, data=[{"b64": "####"}]), 400, "BYTES: {b64} invalid")
    kjson(add, image_in(dog, data=[base64.b64encode(patch_sof(dog, 65500, 65500)).decode()]), 413,
          "BYTES: 65500x65500", "kserve_json")
    kjson(add, image_in(dog, shape=[MAX_IMAGES + 1], data=["AA=="] * (MAX_IMAGES + 1)), 413, "BYTES: 5 images > max")
    kjson(add, image_in(dog, shape=[2 ** 62], data=[]), 413, "BYTES: shape 2^62")
    kjson(add, fp32_in(shape=[MAX_IMAGES + 1, 3, size[0], size[1]]), 413, "FP32: 5 images > max")
    kjson(add, fp32_in(shape=[2 ** 62, 3, size[0], size[1]]), 413, "FP32: batch 2^62")


def malformed_json(add, gif):
    """KServe JSON bodies that are not valid JSON, or are cut short: 400."""
    for i, bad in enumerate((b"{", b"[]", b"null", b"1", b'"str"', b"{'inputs':[]}", b'{"inputs":[]}x',
                             b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":[NaN]}]}',
                             b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":[Infinity]}]}',
                             b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":[1e99999]}]}',
                             b"\xef\xbb\xbf{}", b'{"a":"\xff\xfe"}', b"[" * 5000 + b"]" * 5000,
                             b'{"inputs":' + b"[" * 3000 + b"]" * 3000 + b"}", b"\x00" * 16,
                             b'{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["\\ud800"]}]}')):
        kjson(add, bad, 400, "malformed JSON #%d %r" % (i, bad[:24]))
    valid = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                    "data": [base64.b64encode(gif).decode()]}]}).encode()
    for cut in (1, 10, len(valid) // 2, len(valid) - 1):
        kjson(add, valid[:cut], 400, "JSON truncated at %d" % cut)


def kserve_tensors(add, photos):
    """KServe JSON with wrong tensor names, datatypes, shapes or data: 422."""
    dog, size = photos.dog, T.input_hw
    for name, doc in (
            ("unknown input name", fp32_in(name="pixels")),
            ("input name empty", fp32_in(name="")),
            ("FP32 input as INT64", fp32_in(datatype="INT64")),
            ("FP32 input as FP16", fp32_in(datatype="FP16")),
            ("FP32 input as BYTES", fp32_in(datatype="BYTES")),
            ("FP32 input as fp32", fp32_in(datatype="fp32")),
            ("image input as FP32", image_in(dog, datatype="FP32")),
            ("image input as UINT8", image_in(dog, datatype="UINT8")),
            ("shape [1,3,H]", fp32_in(shape=[1, 3, size[0]])),
            ("shape [1,3,H,W+1]", fp32_in(shape=[1, 3, size[0], size[1] + 1])),
            ("shape [1,4,H,W]", fp32_in(shape=[1, 4, size[0], size[1]])),
            ("shape [1,H,W,3] (NHWC)", fp32_in(shape=[1, size[0], size[1], 3])),
            ("shape [0,3,H,W]", fp32_in(shape=[0, 3, size[0], size[1]])),
            ("shape [-1,3,H,W]", fp32_in(shape=[-1, 3, size[0], size[1]])),
            ("shape [1.5,3,H,W]", fp32_in(shape=[1.5, 3, size[0], size[1]])),
            ("shape is a string", fp32_in(shape="1,3,224,224")),
            ("shape []", fp32_in(shape=[])),
            ("shape with 5 dims", fp32_in(shape=[1, 1, 3, size[0], size[1]])),
            ("FP32 data too short", fp32_in(data=[0.5] * 10)),
            ("FP32 data nested too deep", fp32_in(data=[[[[[[[[[[0]]]]]]]]]])),
            ("FP32 data strings", fp32_in(data=["0"] * 4)),
            ("FP32 data null", fp32_in(data=[None])),
            ("FP32 data booleans", fp32_in(data=[True])),
            ("FP32 data objects", fp32_in(data=[{}])),
            ("BYTES shape [1,2]", image_in(dog, shape=[1, 2])),
            ("BYTES shape [1,1,1]", image_in(dog, shape=[1, 1, 1])),
            ("BYTES shape [0]", image_in(dog, shape=[0], data=[])),
            ("BYTES shape [2], one element", image_in(dog, shape=[2])),
            ("BYTES data missing", image_in(dog, data=None)),
            ("BYTES element a number", image_in(dog, data=[5])),
            ("BYTES element null", image_in(dog, data=[None])),
            ("BYTES {b64} not a string", image_in(dog, data=[{"b64": 5}])),
            ("BYTES data is a string", image_in(dog, data="AAAA")),
    ):
        kjson(add, doc, 422, name, "kserve_tensor")
    fp32_values(add)


def fp32_values(add):
    """Full-length FP32 JSON data with one value that is not a finite float32, or one value too many: 422."""
    count = 3 * T.input_hw[0] * T.input_hw[1]
    for label, token in (("1e39 (float32 +Inf)", "1e39"), ("-1e39 (float32 -Inf)", "-1e39"),
                         ("1e308", "1e308"), ("-3.5e38", "-3.5e38")):
        for where in (0, count - 1):
            vals = ["0"] * count
            vals[where] = token
            body = ('{"inputs":[{"name":"input","datatype":"FP32","shape":%s,"data":[%s]}]}'
                    % (json.dumps(shape4()), ",".join(vals))).encode()
            kjson(add, body, 422, "FP32 %s at %d" % (label, where), "kserve_tensor")
    vals = ",".join(["0"] * (count + 1))
    kjson(add, ('{"inputs":[{"name":"input","datatype":"FP32","shape":%s,"data":[%s]}]}'
                % (json.dumps(shape4()), vals)).encode(), 422, "FP32 data one too long", "kserve_tensor")


def kbin(add, header, tail, status, name, ihcl=None, shape=KSERVE):
    """Adds a binary-data extension case: JSON header (dict or bytes) + tail, with this IHCL."""
    hj = json.dumps(header).encode() if isinstance(header, dict) else header
    h = {"Content-Type": "application/octet-stream",
         "Inference-Header-Content-Length": str(len(hj)) if ihcl is None else ihcl}
    add("kserve_binary", name, status, shape, post(INFER, hj + tail, None, h))


def fp32_nbytes():
    """Bytes of one image's FP32 tensor."""
    return 3 * T.input_hw[0] * T.input_hw[1] * 4


def fp32_hdr(bds=None, **kw):
    """A binary-data header for one FP32 "input" tensor of bds bytes (default: the right size)."""
    bds = fp32_nbytes() if bds is None else bds
    return {"inputs": [dict({"name": "input", "datatype": "FP32", "shape": shape4(),
                             "parameters": {"binary_data_size": bds}}, **kw)]}


def bytes_hdr(bds, n=1):
    """A binary-data header for n BYTES "image" elements in bds bytes."""
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [n],
                        "parameters": {"binary_data_size": bds}}]}


def elem(data):
    """One BYTES element of the binary-data extension: a 4-byte length, then the data."""
    return struct.pack("<I", len(data)) + data


def kserve_binary(add, photos):
    """KServe binary-data extension: bad IHCL and sizes (400), bad tensors (422), huge image (413)."""
    nbytes, size = fp32_nbytes(), T.input_hw
    zeros = b"\0" * nbytes
    kbin(add, fp32_hdr(), zeros, 400, "IHCL past the end", ihcl=str(len(json.dumps(fp32_hdr())) + nbytes + 1))
    for ihcl, name in (("abc", "IHCL not a number"), ("-1", "IHCL negative"), ("", "IHCL empty"),
                       ("18446744073709551616", "IHCL 2^64"), ("0", "IHCL 0"), ("10", "IHCL cuts the JSON")):
        kbin(add, fp32_hdr(), zeros, 400, name, ihcl=ihcl)
    kbin(add, fp32_hdr(), zeros[:-4], 400, "FP32 binary 4 bytes short")
    kbin(add, fp32_hdr(), zeros + b"\0" * 4, 400, "FP32 binary 4 bytes over")
    kbin(add, fp32_hdr(), b"", 400, "FP32 binary missing")
    kbin(add, fp32_hdr(nbytes - 4), zeros[:-4], 422, "FP32 binary_data_size wrong")
    kbin(add, fp32_hdr(-4), zeros, 422, "FP32 binary_data_size negative")
    kbin(add, fp32_hdr("602112"), zeros, 422, "FP32 binary_data_size a string")
    kbin(add, fp32_hdr(datatype="FP16"), zeros, 422, "FP32 binary labelled FP16")
    kbin(add, fp32_hdr(shape=[1, 3, size[0], size[1] - 1]), zeros, 422, "FP32 binary wrong shape")
    for label, bits in (("NaN", 0x7FC00000), ("+Inf", 0x7F800000), ("-Inf", 0xFF800000), ("signalling NaN", 0x7F800001)):
        for where in (0, nbytes // 4 - 1):
            data = bytearray(zeros)
            data[where * 4:where * 4 + 4] = struct.pack("<I", bits)
            kbin(add, fp32_hdr(), bytes(data), 422, "FP32 binary %s at %d" % (label, where))
    kserve_binary_bytes(add, photos)


def kserve_binary_bytes(add, photos):
    """KServe binary-data extension, BYTES input: broken length prefixes and bad images."""
    dog, gif = photos.dog, photos.gif
    kbin(add, bytes_hdr(3), b"\x05\0\0", 400, "BYTES length prefix truncated")
    kbin(add, bytes_hdr(4 + 100), struct.pack("<I", 1000) + dog[:100], 400, "BYTES element longer than the data")
    kbin(add, bytes_hdr(4 + 100), struct.pack("<I", 0xFFFFFFFF) + dog[:100], 400, "BYTES element length 2^32-1")
    kbin(add, bytes_hdr(len(elem(gif))), elem(gif), 400, "BYTES binary GIF")
    kbin(add, bytes_hdr(len(elem(b""))), elem(b""), 400, "BYTES binary empty element")
    kbin(add, bytes_hdr(len(elem(dog[:3000]))), elem(dog[:3000]), 400, "BYTES binary truncated JPEG")
    kbin(add, bytes_hdr(2 * len(elem(gif)), 2), elem(gif), 400, "BYTES binary second element missing")
    kbin(add, bytes_hdr(len(elem(gif)) + 1), elem(gif) + b"\0", 400, "BYTES binary trailing byte")
    big = patch_sof(dog, 65500, 65500)
    kbin(add, bytes_hdr(len(elem(big))), elem(big), 413, "BYTES binary 65500x65500")
