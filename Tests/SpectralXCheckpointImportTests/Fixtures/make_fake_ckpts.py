#!/usr/bin/env python3
"""Writes small torch.save-format checkpoints WITHOUT torch (stdlib pickle + zipfile only).

The real pickler produces the opcodes; fake `torch` / `torch._utils` modules give the globals the
names torch uses, and a persistent_id hook writes ('storage', torch.XStorage, key, 'cpu', numel)
exactly like torch.serialization. Covered: strided views, storage offsets, two tensors sharing
a storage, float16/bfloat16/float64/int32 storages, Parameters, an OrderedDict with `_metadata`,
unknown callback classes and `bytes` in hyper_parameters, protocol 2 and 5, ZIP64 records.

Usage: python3 make_fake_ckpts.py OUTDIR   (writes fake-p2.ckpt, fake-p5.ckpt, fake.json)
"""
import collections, hashlib, io, json, pickle, struct, sys, types, zipfile

torch = types.ModuleType("torch"); torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = torch_utils
for m in ["lightning", "lightning.pytorch", "lightning.pytorch.callbacks"]:
    sys.modules[m] = types.ModuleType(m)
cb = sys.modules["lightning.pytorch.callbacks"]


def _fake(name, module):
    f = lambda *a: None
    f.__name__ = f.__qualname__ = name; f.__module__ = module.__name__
    setattr(module, name, f)
    return f


LIMITS = (zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT)
rebuild_tensor_v2 = _fake("_rebuild_tensor_v2", torch_utils)
rebuild_parameter = _fake("_rebuild_parameter", torch_utils)
STORAGE = {}
for cls, fmt in [("FloatStorage", "f"), ("DoubleStorage", "d"), ("HalfStorage", "e"), ("BFloat16Storage", "bf"),
                 ("LongStorage", "q"), ("IntStorage", "i")]:
    c = type(cls, (), {"__module__": "torch"}); setattr(torch, cls, c); STORAGE[cls] = (c, fmt)


class ModelCheckpoint:  # an "unknown" callback class
    __module__ = "lightning.pytorch.callbacks"
    def __init__(self): self.dirpath = "files"; self.monitor = "val_loss"


cb.ModelCheckpoint = ModelCheckpoint


def pack(fmt, values):
    if fmt == "bf":  # bfloat16: the upper half of the float32 bits (values chosen exactly representable)
        return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in values)
    return struct.pack("<%d%s" % (len(values), fmt), *values)


class Storage:
    def __init__(self, key, cls, values):
        self.key, self.cls, self.values = key, cls, values
        self.data = pack(STORAGE[cls][1], values)


class Tensor:
    def __init__(self, storage, offset, size, stride, param=False):
        self.s, self.o, self.size, self.stride, self.param = storage, offset, tuple(size), tuple(stride), param

    def __reduce_ex__(self, proto):
        t = (rebuild_tensor_v2, (self.s, self.o, self.size, self.stride, False, collections.OrderedDict()))
        if not self.param:
            return t
        return (rebuild_parameter, (_Inner(self), True, collections.OrderedDict()))

    def c_order(self):
        """Element values in C order (what tensor.contiguous() would hold)."""
        out = []
        def rec(d, base):
            if d == len(self.size):
                out.append(self.s.values[base]); return
            for i in range(self.size[d]): rec(d + 1, base + i * self.stride[d])
        rec(0, self.o)
        return out


class _Inner:
    def __init__(self, t): self.t = t
    def __reduce_ex__(self, proto): return (rebuild_tensor_v2, (self.t.s, self.t.o, self.t.size, self.t.stride, True,
                                                                collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", STORAGE[obj.cls][0], obj.key, "cpu", len(obj.values))
        return None


def checkpoint():
    s0 = Storage("0", "FloatStorage", [float(i) * 0.5 - 3 for i in range(24)])       # 2x3x4 base
    s1 = Storage("1", "HalfStorage", [0.5, -1.25, 3.0, 65504.0, 6.1035156e-05, 0.0])
    s2 = Storage("2", "BFloat16Storage", [1.0, -2.5, 0.15625, 3.0])
    s3 = Storage("3", "DoubleStorage", [0.1, 0.2, 0.3])
    s4 = Storage("4", "IntStorage", [-7, 8, 2147483647])
    s5 = Storage("5", "LongStorage", [45000])
    sd = collections.OrderedDict()
    sd["model.a.contiguous"] = Tensor(s0, 0, [2, 3, 4], [12, 4, 1])
    sd["model.a.transposed"] = Tensor(s0, 0, [4, 3, 2], [1, 4, 12])    # permute(2,1,0): same storage
    sd["model.a.offset_slice"] = Tensor(s0, 13, [2, 2], [4, 1])          # offset view [1, 0:2, 1:3]
    sd["model.a.step"] = Tensor(s0, 1, [3], [8])                          # every 8th element
    sd["model.a.broadcast"] = Tensor(s0, 5, [3, 2], [0, 1])              # expand(): stride 0
    sd["model.h.half"] = Tensor(s1, 0, [6], [1])
    sd["model.h.bf16"] = Tensor(s2, 0, [2, 2], [2, 1])
    sd["model.h.double"] = Tensor(s3, 0, [3], [1])
    sd["model.h.int32"] = Tensor(s4, 0, [3], [1])
    sd["model.p.param"] = Tensor(s0, 2, [2], [1], param=True)
    sd["model.n.num_batches_tracked"] = Tensor(s5, 0, [], [])
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("a", {"version": 2})])
    hp = {"wavelengths": [0.45, 0.55, 0.65], "callbacks": [ModelCheckpoint()], "blob": b"\x00\xff raw",
          "tags": {"x", "y"}, "in_channels": 3}
    ck = {"epoch": 7, "global_step": 1234, "state_dict": sd, "optimizer_state_dict": {"state": {}, "param_groups": []},
          "lr_scheduler_state_dict": None, "trainer_state": sd, "hyper_parameters": hp}
    return ck, sd, [s0, s1, s2, s3, s4, s5]


def expected(sd):
    fmt = {"FloatStorage": ("float32", "f"), "HalfStorage": ("float16", "e"), "BFloat16Storage": ("bfloat16", "bf"),
           "DoubleStorage": ("float64", "d"), "IntStorage": ("int32", "i"), "LongStorage": ("int64", "q")}
    out = []
    for k, t in sd.items():
        name, f = fmt[t.s.cls]
        vals = t.c_order()
        out.append({"key": k, "dtype": name, "shape": list(t.size), "storage": t.s.key,
                    "sha256": hashlib.sha256(pack(f, vals)).hexdigest(), "values": vals})
    return out


def write(path, protocol, zip64):
    # zip64=True lowers zipfile's limits so the central directory and end record use genuine
    # ZIP64 records (extra field id 1, ZIP64 end record + locator) for these tiny entries.
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = (16, 4) if zip64 else (LIMITS)
    ck, sd, storages = checkpoint()
    buf = io.BytesIO(); TorchPickler(buf, protocol=protocol).dump(ck)
    name = "archive"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        def add(n, data):
            info = zipfile.ZipInfo(f"{name}/{n}", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=zip64) as f: f.write(data)
        add("data.pkl", buf.getvalue())
        add("byteorder", b"little")
        for s in storages: add(f"data/{s.key}", s.data)
        add("version", b"3\n")
    return sd


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    sd = write(f"{out}/fake-p2.ckpt", 2, False)
    write(f"{out}/fake-p2-zip64.ckpt", 2, True)
    write(f"{out}/fake-p5.ckpt", 5, False)
    json.dump({"epoch": 7, "global_step": 1234, "tensors": expected(sd)}, open(f"{out}/fake.json", "w"), indent=1)
