"""Read a legacy (pre-zip) PyTorch checkpoint with pickle + numpy only, no torch.

Layout (torch.serialization's legacy format): three small pickles (magic number, protocol
version, system info), the state-dict pickle whose tensors refer to storages through
persistent ids, a pickle listing the storage keys in file order, then for each storage an
int64 element count followed by its raw little-endian bytes.
"""
import collections
import pickle
import struct

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Storage:
    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.data = dtype, numel, None


def _rebuild_tensor_v2(storage, offset, size, stride, *_rest):
    return ("tensor", storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id kind {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(_DTYPES[storage_type.name], numel)
        return self.storages[key]


def load_state_dict(path):
    """Return {name: np.ndarray} for every tensor of a legacy torch checkpoint."""
    with open(path, "rb") as f:
        if pickle.load(f) != MAGIC:
            raise ValueError(f"{path}: not a legacy torch checkpoint (bad magic number)")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        storages = {}
        tree = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            st = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            itemsize = np.dtype(st.dtype).itemsize
            st.data = np.frombuffer(f.read(numel * itemsize), dtype=st.dtype)
    out = {}
    for name, value in tree.items():
        _, st, offset, size, stride = value
        itemsize = st.data.itemsize
        arr = np.lib.stride_tricks.as_strided(
            st.data[offset:], shape=size, strides=[s * itemsize for s in stride]
        )
        out[name] = np.array(arr)  # own the memory, contiguous
    return out
