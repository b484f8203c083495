"Promises of padnotes.sparse: exact packing in every encoding, 'auto' is the smallest, real file sizes, checkpoint round trips."

import math, os, subprocess, sys, tempfile

import numpy as np
import pytest
import torch
from torch import nn
from hypothesis import given, settings, strategies as st
from safetensors.torch import load_file, save_file

from padnotes.sparse import (
    ENCODINGS,
    Packed,
    encoding_bytes,
    index_dtype,
    pack,
    pack_bits,
    saved_bytes,
    tensor_bytes,
    unpack_bits,
)

DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
AS_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits_of(t):
    "The tensor's bits as integers (NaN payloads and -0.0 compare exactly)."
    return t.contiguous().view(AS_INT[t.element_size()])


def reference_dense(values, mask, fill=0.0):
    "Plain reference: `values` where `mask`, `fill` elsewhere, compared as bits."
    out = torch.full(values.shape, fill, dtype=values.dtype)
    return bits_of(torch.where(mask.expand(values.shape), values, out))


def reference_max_gap(mask):
    idx = np.flatnonzero(mask.numpy().reshape(-1))
    return int(np.diff(idx, prepend=-1).max() - 1) if idx.size else 0


def random_case(shape, lead, density, dtype, seed, specials=True):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape, generator=g) < density
    values = torch.randn((*lead, *shape), generator=g, dtype=torch.float64).to(dtype)
    if specials and values.numel() >= 4:
        flat = values.view(-1)
        flat[:4] = torch.tensor(
            [float("nan"), float("inf"), -float("inf"), -0.0], dtype=dtype
        )
    return values, mask


# ---- bitmaps ----------------------------------------------------------------------------------------------


@given(st.integers(0, 300), st.integers(0, 2**31 - 1))
def test_pack_bits_round_trip_and_bit_order(n, seed):
    m = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5
    bits = pack_bits(m)
    assert bits.dtype == torch.uint8 and bits.shape == (math.ceil(n / 8),)
    assert torch.equal(unpack_bits(bits, n), m)
    ref = np.packbits(
        np.pad(m.numpy(), (0, (-n) % 8)), bitorder="little"
    )  # entry 8i+j is bit j of byte i
    assert bits.tolist() == ref.tolist()


def test_pack_bits_any_shape_non_contiguous():
    m = torch.rand(3, 5, 7) < 0.3
    t = m.transpose(0, 2)
    assert not t.is_contiguous()
    assert torch.equal(unpack_bits(pack_bits(t), t.numel()), t.reshape(-1))


def test_bits_bad_inputs():
    with pytest.raises(
        TypeError, match="mask must be a bool tensor, got a torch.float32 tensor"
    ):
        pack_bits(torch.ones(3))
    with pytest.raises(TypeError, match="bits must be a uint8 tensor"):
        unpack_bits(torch.ones(2, dtype=torch.int64), 10)
    with pytest.raises(ValueError, match="2 bytes for numel=10, got 1"):
        unpack_bits(torch.zeros(1, dtype=torch.uint8), 10)


# ---- pack / unpack ----------------------------------------------------------------------------------------

shapes = st.lists(st.integers(0, 7), min_size=0, max_size=3).map(tuple)
leads = st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple)


@settings(max_examples=150, deadline=None)
@given(
    shapes,
    leads,
    st.floats(0, 1),
    st.sampled_from(DTYPES),
    st.sampled_from(("auto", *ENCODINGS)),
    st.integers(0, 2**31 - 1),
    st.sampled_from((0.0, -1.5, 7)),
)
def test_round_trip_exact(shape, lead, density, dtype, encoding, seed, fill):
    values, mask = random_case(shape, lead, density, dtype, seed)
    p = pack(values, mask, encoding)
    assert p.values.shape == (*lead, int(mask.sum())) and p.shape == tuple(shape)
    assert p.numel() == mask.numel() and p.nnz() == int(mask.sum())
    assert torch.equal(p.mask(), mask)
    assert torch.equal(p.indices(), mask.reshape(-1).nonzero().reshape(-1))
    out = p.unpack(fill)
    assert out.dtype == dtype and out.shape == values.shape
    assert torch.equal(bits_of(out), reference_dense(values, mask, fill))


@pytest.mark.parametrize("encoding", ("auto", *ENCODINGS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["empty", "full", "one", "one_unmasked", "scalar"])
def test_edge_masks(encoding, dtype, kind):
    mask = {
        "empty": torch.zeros(5, 3, dtype=torch.bool),
        "full": torch.ones(5, 3, dtype=torch.bool),
        "one": torch.ones(1, dtype=torch.bool),
        "one_unmasked": torch.zeros(1, dtype=torch.bool),
        "scalar": torch.tensor(True),
    }[kind]
    values = torch.randn(4, *mask.shape).to(dtype)
    p = pack(values, mask, encoding)
    assert torch.equal(bits_of(p.unpack()), reference_dense(values, mask))
    assert torch.equal(p.mask(), mask)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_non_contiguous_inputs(encoding):
    values = torch.randn(6, 4, 5).permute(2, 1, 0)  # (5, 4, 6): lead 5, shape (4, 6)
    mask = (torch.rand(6, 4) < 0.5).T
    assert not values.is_contiguous() and not mask.is_contiguous()
    p = pack(values, mask, encoding)
    assert torch.equal(p.unpack(), torch.where(mask, values, 0.0))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_pack_copies_values(encoding):
    values, mask = torch.randn(8, 8), torch.rand(8, 8) < 0.5
    p = pack(values, mask, encoding)
    before = p.unpack().clone()
    values.add_(1.0)
    assert torch.equal(p.unpack(), before)


@pytest.mark.parametrize("n", [1, 255, 256, 257, 65536, 65537])
def test_index_dtype_narrowest(n):
    mask = torch.zeros(n, dtype=torch.bool)
    mask[-1] = True
    p = pack(torch.ones(n), mask, "index")
    assert p.positions.dtype == (
        torch.uint8 if n <= 256 else torch.uint16 if n <= 65536 else torch.uint32
    )
    assert p.indices().tolist() == [n - 1]
    d = pack(torch.ones(n), mask, "delta")  # one skip of n-1
    assert d.positions.dtype == index_dtype(n - 1) and d.positions.long().tolist() == [
        n - 1
    ]


def test_index_dtype_values():
    assert [
        index_dtype(v)
        for v in (0, 255, 256, 2**16 - 1, 2**16, 2**32 - 1, 2**32, 2**63 - 1)
    ] == [torch.uint8] * 2 + [torch.uint16] * 2 + [torch.uint32] * 2 + [torch.int64] * 2
    with pytest.raises(ValueError, match="fit in int64"):
        index_dtype(2**63)
    with pytest.raises(TypeError):
        index_dtype(3.0)


# ---- sizes ------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    shapes, leads, st.floats(0, 1), st.sampled_from(DTYPES), st.integers(0, 2**31 - 1)
)
def test_auto_is_smallest_and_nbytes_is_the_formula(shape, lead, density, dtype, seed):
    values, mask = random_case(shape, lead, density, dtype, seed, specials=False)
    sizes = encoding_bytes(
        mask.numel(), int(mask.sum()), dtype, math.prod(lead), reference_max_gap(mask)
    )
    for enc in ENCODINGS:
        assert pack(values, mask, enc).nbytes() == sizes[enc], enc
    auto = pack(values, mask)
    assert auto.nbytes() == min(sizes.values())
    assert (
        auto.encoding == [e for e in ENCODINGS if sizes[e] == min(sizes.values())][0]
    )  # ties: first of ENCODINGS


def test_encoding_bytes_closed_form():
    n, k = 768 * 768, 2949
    s = encoding_bytes(n, k)  # evenly spread: largest skip ceil((n-k)/k) = 200
    assert s == {
        "bitmap": n // 8 + 4 * k,
        "index": 4 * k + 4 * k,
        "delta": 1 * k + 4 * k,
    }
    assert encoding_bytes(n, k, max_gap=1536)["delta"] == 2 * k + 4 * k
    assert encoding_bytes(10, 0) == {"bitmap": 2, "index": 0, "delta": 0}
    assert encoding_bytes(0, 0) == {"bitmap": 0, "index": 0, "delta": 0}
    assert encoding_bytes(100, 10, torch.bfloat16, lead=4)["bitmap"] == 13 + 4 * 10 * 2
    with pytest.raises(ValueError, match="nnz must be <= numel = 10, got 11"):
        encoding_bytes(10, 11)
    with pytest.raises(ValueError, match="max_gap must be <= numel - nnz = 5"):
        encoding_bytes(10, 5, max_gap=6)
    with pytest.raises(TypeError, match="dtype must be a torch.dtype"):
        encoding_bytes(10, 5, dtype="float32")
    with pytest.raises(TypeError, match="numel must be an int"):
        encoding_bytes(10.0, 5)


def test_crossovers():
    "The bitmap overtakes w-byte indices at density 1/(8w), and evenly spread skips at 1/8."
    for n, w in ((256, 1), (36864, 2), (589824, 4)):
        k = n // (8 * w)
        assert encoding_bytes(n, k - 1)["index"] < encoding_bytes(n, k - 1)["bitmap"]
        assert encoding_bytes(n, k)["index"] == encoding_bytes(n, k)["bitmap"]
        k8 = n // 8
        assert encoding_bytes(n, k8 - 1)["delta"] < encoding_bytes(n, k8 - 1)["bitmap"]
        assert encoding_bytes(n, k8)["delta"] == encoding_bytes(n, k8)["bitmap"]


def test_saved_bytes_is_the_file_size_and_close_to_tensor_bytes():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 2)
    )
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.safetensors")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
        assert saved_bytes(model) == os.path.getsize(path)
    tb = tensor_bytes(model)
    assert tb == sum(v.numel() * v.element_size() for v in model.state_dict().values())
    header = saved_bytes(model) - tb
    assert (
        8 < header <= 100 * len(model.state_dict())
    )  # 8 bytes of length plus a small JSON table


def test_saved_bytes_handles_views_shared_and_packed():
    base = torch.randn(10, 10)
    obj = {
        "t": base.T,
        "row": base[2],
        "base": base,
        "alias": base,
        "empty": torch.zeros(0, 3),
        "p": pack(base, base > 1),
    }
    size = saved_bytes(obj)
    assert (
        tensor_bytes(obj)
        == 4 * (100 + 10 + 100) + pack(base, base > 1).nbytes() + 8 * 3
    )
    assert size - tensor_bytes(obj) < 1000
    assert saved_bytes(pack(base, base > 0)) > tensor_bytes(pack(base, base > 0))
    with pytest.raises(
        TypeError,
        match="expected an nn.Module, a Packed or a dict of tensors, got list",
    ):
        saved_bytes([base])
    with pytest.raises(TypeError, match="'w' is a int"):
        tensor_bytes({"w": 3})


def test_pad_layer_within_two_percent_of_formula():
    n, r, K = 64 * 64 * 3 * 3, 0.3, 4
    g = torch.Generator().manual_seed(0)
    mode = torch.zeros(n, dtype=torch.bool)
    mode[torch.randperm(n, generator=g)[: int(r * n)]] = True
    mode = mode.view(64, 64, 3, 3)
    layer = {
        **pack(torch.randn(K, 64, 64, 3, 3, generator=g), mode, "bitmap").to_tensors(
            "dyn."
        ),
        "static_values": pack(torch.randn(64, 64, 3, 3, generator=g), ~mode).values,
    }
    formula = ((1 - r) + r * K) * n * 4 + n / 8
    assert abs(saved_bytes(layer) / formula - 1) < 0.02


# ---- checkpoints ------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    shapes,
    leads,
    st.floats(0, 1),
    st.sampled_from(DTYPES),
    st.sampled_from(ENCODINGS),
    st.integers(0, 2**31 - 1),
)
def test_safetensors_round_trip_bit_for_bit(
    shape, lead, density, dtype, encoding, seed
):
    values, mask = random_case(shape, lead, density, dtype, seed)
    p = pack(values, mask, encoding)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p.safetensors")
        save_file({**p.to_tensors("a.b."), "other": torch.ones(2)}, path)
        back = Packed.from_tensors(load_file(path), "a.b.")
    assert back.shape == p.shape and back.encoding == p.encoding
    assert back.positions.dtype == p.positions.dtype and torch.equal(
        back.positions, p.positions
    )
    assert back.values.dtype == dtype and torch.equal(
        bits_of(back.values), bits_of(p.values)
    )
    assert torch.equal(bits_of(back.unpack()), reference_dense(values, mask))


def test_packed_in_a_module_state_dict():
    class Holder(nn.Module):
        def __init__(self, p):
            super().__init__()
            for k, v in p.to_tensors().items():
                self.register_buffer(f"w_{k}", v)

    values, mask = torch.randn(4, 6, 6), torch.rand(6, 6) < 0.3
    h = Holder(pack(values, mask))
    back = Packed.from_tensors(h.state_dict(), "w_")
    assert torch.equal(back.unpack(), torch.where(mask, values, 0.0))


def test_from_tensors_rejects_bad_files():
    p = pack(torch.randn(3, 20), torch.rand(20) < 0.5, "index")
    with pytest.raises(ValueError, match="no Packed stored under prefix 'x.'"):
        Packed.from_tensors(p.to_tensors(), "x.")
    t = p.to_tensors()
    t["meta"] = torch.tensor([7, 20])
    with pytest.raises(ValueError, match="meta must be int64"):
        Packed.from_tensors(t)
    t = p.to_tensors()
    t["meta"] = torch.tensor([1, 21])
    Packed.from_tensors(t)  # another shape the indices fit: fine
    t = p.to_tensors()
    t["meta"] = torch.tensor([1, 4, 4])
    with pytest.raises(ValueError):
        Packed.from_tensors(t)
    t = p.to_tensors()
    t["positions"] = t["positions"].flip(0)
    with pytest.raises(ValueError, match="do not describe"):
        Packed.from_tensors(t)
    b = pack(torch.randn(3, 20), torch.rand(20) < 0.5, "bitmap").to_tensors()
    b["positions"] = b["positions"] | 0x80
    with pytest.raises(ValueError, match="do not describe"):  # a padding bit set
        Packed.from_tensors(b)


# ---- bad inputs -------------------------------------------------------------------------------------------


def test_pack_bad_inputs():
    v, m = torch.randn(2, 4, 4), torch.rand(4, 4) < 0.5
    with pytest.raises(
        TypeError, match="mask must be a bool tensor, got a torch.float32 tensor"
    ):
        pack(v, m.float())
    with pytest.raises(TypeError, match="mask must be a bool tensor, got ndarray"):
        pack(v, m.numpy())
    with pytest.raises(TypeError, match="values must be a tensor, got list"):
        pack([1.0], torch.ones(1, dtype=torch.bool))
    with pytest.raises(
        ValueError,
        match=r"values must have shape \(\*lead, \*mask.shape\) = \(\*lead, 4, 4\), got values.shape \(2, 4, 5\)",
    ):
        pack(torch.randn(2, 4, 5), m)
    with pytest.raises(ValueError, match="got values.shape \\(4,\\)"):
        pack(torch.randn(4), m)
    with pytest.raises(
        ValueError,
        match="encoding must be one of \\('auto', 'bitmap', 'index', 'delta'\\), got 'csr'",
    ):
        pack(v, m, "csr")
    with pytest.raises(TypeError, match="encoding must be a str"):
        pack(v, m, 1)
    with pytest.raises(TypeError, match="fill must be a number"):
        pack(v, m).unpack(fill="0")


def test_packed_validates_fields():
    with pytest.raises(ValueError, match="encoding must be one of"):
        Packed((4,), "rle", torch.zeros(1, dtype=torch.uint8), torch.zeros(1))
    with pytest.raises(
        ValueError, match="bitmap positions must be a 1-d uint8 tensor of 1 entries"
    ):
        Packed((4,), "bitmap", torch.zeros(2, dtype=torch.uint8), torch.zeros(1))
    with pytest.raises(
        ValueError, match="index positions must be a 1-d integer tensor of 2 entries"
    ):
        Packed((4,), "index", torch.zeros(2), torch.zeros(2))
    with pytest.raises(
        ValueError,
        match="values hold 5 entries but the mask of shape \\(4,\\) has only 4",
    ):
        Packed((4,), "index", torch.zeros(5, dtype=torch.uint8), torch.zeros(5))
    with pytest.raises(TypeError, match="shape must be a tuple"):
        Packed(4, "index", torch.zeros(1, dtype=torch.uint8), torch.zeros(1))


# ---- devices ----------------------------------------------------------------------------------------------


class NoHostCopies(torch.overrides.TorchFunctionMode):
    "Fail on any call that would copy data to the host or to another device than the input's."

    def __init__(self, device):
        super().__init__()
        self.device = torch.device(device)
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        self.calls.append(name)
        if name in ("cpu", "numpy", "tolist", "cuda"):
            raise AssertionError(f"host copy: Tensor.{name}")
        dev = kwargs.get("device")
        if name == "to" and args[1:] and isinstance(args[1], (str, torch.device)):
            dev = args[1]
        if dev is not None and torch.device(dev) != self.device:
            raise AssertionError(f"{name} to {dev}")
        return func(*args, **kwargs)


@pytest.mark.parametrize("encoding", ("auto", *ENCODINGS))
def test_everything_stays_on_the_input_device(encoding):
    values, mask = torch.randn(3, 9, 7), torch.rand(9, 7) < 0.4
    with torch.device("meta"):  # any tensor made without device= would land on meta
        with NoHostCopies("cpu") as mode:
            p = pack(values, mask, encoding)
            out, m, t = p.unpack(), p.mask(), p.to_tensors("w.")
    assert mode.calls
    for x in (p.positions, p.values, out, m, *t.values()):
        assert x.device.type == "cpu"
    assert torch.equal(out, torch.where(mask, values, 0.0))


def test_bits_on_meta_device():
    m = torch.zeros(21, dtype=torch.bool, device="meta")
    bits = pack_bits(m)
    assert (
        bits.device.type == "meta" and bits.shape == (3,) and bits.dtype == torch.uint8
    )
    assert unpack_bits(bits, 21).device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("encoding", ("auto", *ENCODINGS))
def test_cuda_round_trip(encoding):
    values, mask = (
        torch.randn(4, 64, 9, device="cuda"),
        torch.rand(64, 9, device="cuda") < 0.3,
    )
    p = pack(values, mask, encoding)
    assert p.positions.is_cuda and p.values.is_cuda and p.unpack().is_cuda
    assert torch.equal(p.unpack(), torch.where(mask, values, 0.0))
    back = Packed.from_tensors(p.to_tensors())
    assert torch.equal(back.unpack(), p.unpack())


# ---- the module stays light -------------------------------------------------------------------------------


def test_import_does_not_pull_pandas_or_plotly():
    code = "import padnotes.sparse, sys; assert 'pandas' not in sys.modules and 'plotly' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
