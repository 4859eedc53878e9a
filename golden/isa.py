"""The single source of truth for uz's instruction (layer descriptor) format.

A program is a sequence of fixed-size descriptors, one per layer, stored in
external memory at the address given to the engine. Each descriptor is
``DESC_WORDS`` little-endian 32-bit words. Fields are listed below in order;
``_layout`` packs them LSB-first into the words so that no field crosses a
32-bit word (a field that would is moved to the next word), which keeps the
hardware's decode a set of plain bit selects.

``scripts/gen_isa.py`` turns this module into ``rtl/uz_isa_pkg.sv`` and
``docs/isa.md``; a test fails when either is stale.

``validate`` is the one statement of what the engine accepts: it returns the
error code the engine reports for a descriptor, checking in the order the
RTL checks. The compiler raises the same problem as a readable error.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field as dc_field

from .arith import AVG_N_MAX
from .config import EngineConfig
from .errors import DescriptorError
from .ovsf import gen_shift_bounds

DESC_WORDS = 32
DESC_BYTES = DESC_WORDS * 4
#: Word 0 starts with this constant so a descriptor read from the wrong
#: address is caught instead of executed.
MAGIC = 0xA5


class Kind(enum.IntEnum):
    """Layer kinds (descriptor field ``kind``)."""
    CONV = 1  # convolution; bias, ReLU, fused max pool and data shift optional
    FC = 2    # fully connected: a 1x1 convolution on a (N, 1, 1) input
    POOL = 3  # standalone max pool (fl unchanged, data_shift = 0)


class Err(enum.IntEnum):
    """Error codes of the status register. The order of the descriptor checks
    is the numeric order of their codes (lowest first)."""
    NONE = 0
    BAD_MAGIC = 1        # word 0 does not hold MAGIC
    BAD_KIND = 2         # kind not a Kind
    UNSUPPORTED = 3      # a graph feature this engine does not run (unsupported_features)
    ZERO_DIM = 4         # a channel/height/width field is zero
    BAD_KERNEL = 5       # k not in {1,3,5,7,11} (or {6,9,12}: dense CONV, max_k >= 3), beyond max_k, or FC with k != 1
    BAD_STRIDE = 6       # stride not in 1..4 (FC: must be 1)
    BAD_PAD = 7          # a pad >= k
    KERNEL_TOO_LARGE = 8  # k larger than the padded input
    BAD_POOL = 9         # pool window/stride/pad not supported
    SHAPE_MISMATCH = 10  # output dims disagree with input dims and kernel, or groups/slices with the channels
    BAD_TILE = 11        # tile sizes zero, too large, or not lane multiples
    BAD_SHIFT = 12       # a shift amount or the clip bound outside its legal range
    BAD_CODES = 13       # OVSF code count/mask/length illegal
    BAD_ALIGN = 14       # an address or channel slice not aligned to the memory bus or the lanes
    TOO_LARGE = 15       # a tile does not fit the on-chip buffers
    AXI_READ = 16        # SLVERR/DECERR on a read
    AXI_WRITE = 17       # SLVERR/DECERR on a write
    ABORTED = 18         # software abort


@dataclass(frozen=True)
class Field:
    name: str
    bits: int
    doc: str
    signed: bool = False
    word: int = -1   # filled in by _layout
    lsb: int = -1

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


_FIELD_LIST = [
    Field("magic", 8, f"constant 0x{MAGIC:02X}; anything else is error BAD_MAGIC"),
    Field("kind", 4, "layer kind (Kind)"),
    Field("relu", 1, "apply ReLU to the accumulator before the data shift"),
    Field("pool", 1, "CONV: max pool fused after the data shift"),
    Field("ovsf", 1, "weights are generated from OVSF coefficients (else read raw)"),
    Field("insel", 1, "input selection: pack kernel taps into idle lanes"),
    Field("bias", 1, "add the bias (else the accumulator starts at zero)"),
    Field("k", 4, "kernel size K (1, 3, 5, 7, 11; 6, 9, 12 run as 3x3 sub-windows); FC: 1"),
    Field("stride", 3, "convolution stride (1..4); FC: 1"),
    Field("pool_k", 2, "pool window (2 or 3); POOL and fused pool"),
    Field("pool_s", 2, "pool stride (1..3)"),
    Field("pool_pad", 2, "pool padding per side (< pool_k); padded cells never win"),
    Field("pad_t", 4, "zero padding above the input (< k)"),
    Field("pad_b", 4, "zero padding below the input (< k)"),
    Field("pad_l", 4, "zero padding left of the input (< k)"),
    Field("pad_r", 4, "zero padding right of the input (< k)"),
    Field("in_c", 16, "input channels (FC: input features)"),
    Field("in_h", 16, "input height (FC: 1)"),
    Field("in_w", 16, "input width (FC: 1)"),
    Field("out_c", 16, "output channels (FC: output features)"),
    Field("out_h", 16, "output height as written, after any fused pool"),
    Field("out_w", 16, "output width as written, after any fused pool"),
    Field("tr", 16, "tile: output rows per tile (before any fused pool)"),
    Field("tc", 16, "tile: output columns per tile (before any fused pool)"),
    Field("ti", 16, "tile: input channels per tile (multiple of PN; at most in_c rounded up to PN)"),
    Field("to", 16, "tile: output channels per tile (multiple of PM; at most out_c rounded up to PM)"),
    Field("in_addr", 32, "input activations (channel-grouped layout)"),
    Field("out_addr", 32, "output activations (channel-grouped layout)"),
    Field("wgt_addr", 32, "raw weights or OVSF coefficients (tiled layout; OVSF blocks interleaved over the PM channels of an oc-group)"),
    Field("bias_addr", 32, "bias, one data word per output channel"),
    Field("bias_shift", 8, "right shift of the bias onto the accumulator's fl (fl_b - fl_in - fl_w)", True),
    Field("data_shift", 8, "right shift of the accumulator onto the output fl (fl_in + fl_w - fl_out)", True),
    Field("gen_shift", 8, "right shift of generated weights onto the weight fl (fl_alpha - fl_w); ovsf=1: within gen_shift_range(cfg)", True),
    Field("log2_l", 3, "OVSF block length L = 2**log2_l"),
    Field("n_codes", 6, "OVSF codes kept per block (rho * L)"),
    Field("code_mask", 32, "OVSF: bit j set = code j kept; alphas stored in increasing j"),
    Field("layer_id", 16, "layer number, echoed in the status and counters"),
    # Graph networks. Every one of these is 0 in a chain layer, whose
    # descriptor reads as before; unsupported_features() lists those this
    # engine's RTL does not run yet (error UNSUPPORTED).
    Field("groups", 16, "convolution groups (0 or 1: dense); in_c and out_c are multiples of it"),
    Field("in_shuffle", 8, "channel shuffle of the input (0 or 1: none); g: channel c reads input channel (c mod g)*(in_c/g) + c div g"),
    Field("in_c_off", 16, "first channel of the input within the tensor at in_addr (multiple of PN)"),
    Field("in_c_total", 16, "channels of the whole tensor at in_addr (0: in_c)"),
    Field("out_c_off", 16, "first channel of the output within the tensor at out_addr (multiple of PN)"),
    Field("out_c_total", 16, "channels of the whole tensor at out_addr (0: out_c)"),
    Field("res", 1, "add the residual tensor at res_addr to the accumulator, before ReLU and the data shift"),
    Field("res_shift", 8, "right shift of the residual onto the accumulator's fl (fl_res - fl_in - fl_w; negative: left)", True),
    Field("res_addr", 32, "residual: out_c channels shaped like the convolution result (channel-grouped layout)"),
    Field("clip", 1, "clip the output to [0, clip_hi] after the data shift (ReLU6)"),
    Field("clip_hi", 16, "clip: the upper bound in the output's format (0..largest data value)"),
    Field("pool_avg", 1, "the pool averages (else it takes the maximum)"),
    Field("pool_incl_pad", 1, "average pool: padded cells count in the divisor (ONNX count_include_pad)"),
    Field("pool_global", 1, "the pool window is the whole plane (global pooling; pool_k, pool_s, pads unused)"),
    Field("pool_asym", 1, "pool pads per side: pool_pad is the top, pool_pad_b, pool_pad_l, pool_pad_r the others"),
    Field("pool_kh", 8, "pool window height when not 0 (else pool_k)"),
    Field("pool_kw", 8, "pool window width when not 0 (else pool_k)"),
    Field("pool_pad_b", 4, "pool padding below (pool_asym)"),
    Field("pool_pad_l", 4, "pool padding left (pool_asym)"),
    Field("pool_pad_r", 4, "pool padding right (pool_asym)"),
]


def _layout(fields):
    out, word, lsb = [], 0, 0
    for f in fields:
        if f.bits > 32:
            raise AssertionError(f"field {f.name} wider than a word")
        if lsb + f.bits > 32:
            word, lsb = word + 1, 0
        out.append(Field(f.name, f.bits, f.doc, f.signed, word, lsb))
        lsb += f.bits
    if word >= DESC_WORDS:
        raise AssertionError("descriptor fields do not fit DESC_WORDS")
    return out


FIELDS = _layout(_FIELD_LIST)
FIELD = {f.name: f for f in FIELDS}
#: Kernel sizes of a network layer (golden.network, golden.onnx_import).
KERNELS = (1, 3, 5, 7, 11)
#: Kernel sizes the engine also runs, as S x S sub-windows of SUB_K x SUB_K
#: that accumulate like extra input-channel groups: a window of SUB_K serves
#: them whatever max_k. The compiler lowers a dense K x K layer with K >
#: max_k to the next one (zero taps at the high rows/columns).
DECOMPOSED = (6, 9, 12)
#: The most input channels (rounded up to PN) times sub-windows a decomposed
#: layer may have: the engine counts them in 16 bits.
DECOMPOSED_CHANNELS_MAX = 65535
SUB_K = 3
STRIDES = (1, 2, 3, 4)
#: Legal range of a shift field: covers any pair of legal fractional lengths.
SHIFT_MIN, SHIFT_MAX = -64, 63


def gen_shift_range(cfg: EngineConfig) -> tuple[int, int]:
    """(lo, hi): the gen_shift values of an OVSF layer (ovsf=1) the engine's
    generator shifts by, min(0, alpha_bits - data_bits) - 2 .. log2(ovsf_len);
    the compiler never needs others (golden.ovsf.gen_shift_bounds says why)."""
    return gen_shift_bounds(cfg.ovsf_len, cfg.alpha_bits, cfg.data_bits)


@dataclass
class Descriptor:
    """One layer descriptor; every field defaults to zero (magic excepted)."""
    values: dict = dc_field(default_factory=dict)

    def __post_init__(self):
        for k in self.values:
            if k not in FIELD:
                raise KeyError(f"unknown descriptor field {k!r}")
        self.values.setdefault("magic", MAGIC)

    def __getattr__(self, name):
        if name in FIELD:
            return self.values.get(name, 0)
        raise AttributeError(name)

    def set(self, **kw) -> "Descriptor":
        for k, v in kw.items():
            if k not in FIELD:
                raise KeyError(f"unknown descriptor field {k!r}")
            self.values[k] = int(v)
        return self

    def encode(self) -> bytes:
        return encode(self.values)

    @classmethod
    def decode(cls, data: bytes) -> "Descriptor":
        return cls(decode(data))


def encode(values: dict) -> bytes:
    """Pack field values into DESC_BYTES little-endian bytes."""
    words = [0] * DESC_WORDS
    for name, v in values.items():
        f = FIELD[name]
        v = int(v)
        if not f.lo <= v <= f.hi:
            raise DescriptorError(
                f"descriptor field {name}={v} does not fit its {f.bits}-bit "
                f"{'signed' if f.signed else 'unsigned'} range [{f.lo}, {f.hi}]",
                field=name)
        words[f.word] |= (v & ((1 << f.bits) - 1)) << f.lsb
    return struct.pack(f"<{DESC_WORDS}I", *words)


def decode(data: bytes) -> dict:
    """Unpack DESC_BYTES bytes into a dict of every field."""
    if len(data) != DESC_BYTES:
        raise DescriptorError(f"a descriptor is {DESC_BYTES} bytes, got {len(data)}")
    words = struct.unpack(f"<{DESC_WORDS}I", data)
    out = {}
    for f in FIELDS:
        v = (words[f.word] >> f.lsb) & ((1 << f.bits) - 1)
        if f.signed and v >> (f.bits - 1):
            v -= 1 << f.bits
        out[f.name] = v
    return out


# --- geometry shared by the validator, the golden model and the compiler ---

def conv_out(size: int, k: int, stride: int, pad_lo: int, pad_hi: int) -> int:
    """Output size of a convolution or pool window sweep (floor rule)."""
    return (size + pad_lo + pad_hi - k) // stride + 1


def conv_dims(d) -> tuple[int, int]:
    """(height, width) of the convolution result before any fused pool."""
    return (conv_out(d.in_h, d.k, d.stride, d.pad_t, d.pad_b),
            conv_out(d.in_w, d.k, d.stride, d.pad_l, d.pad_r))


def sub_windows(k: int) -> int:
    """Sub-windows per side S of a kernel: k / SUB_K for a decomposed k
    (DECOMPOSED), else 1. Its S*S sub-windows, a the row and b the column of
    sub = a*S + b, cover taps [SUB_K*a, SUB_K*a + SUB_K) x [SUB_K*b, ...)."""
    return k // SUB_K if k in DECOMPOSED else 1


def window_k(k: int) -> int:
    """The window the compute slides for kernel k: SUB_K for a decomposed k, else k."""
    return SUB_K if k in DECOMPOSED else k


def pool_out(size: int, k: int, s: int, pad: int) -> int:
    return conv_out(size, k, s, pad, pad)


def pool_window(d, ch: int, cw: int) -> tuple:
    """(kh, kw, stride, (top, bottom, left, right)) of a descriptor's pool on a
    ch x cw plane: the legacy square window and symmetric pad, or the graph
    fields (pool_kh/kw, pool_asym pads, pool_global)."""
    if d.pool_global:
        return ch, cw, 1, (0, 0, 0, 0)
    kh, kw = d.pool_kh or d.pool_k, d.pool_kw or d.pool_k
    pads = (d.pool_pad, d.pool_pad_b, d.pool_pad_l, d.pool_pad_r) if d.pool_asym else (d.pool_pad,) * 4
    return kh, kw, d.pool_s, pads


def pool_dims(d, ch: int, cw: int) -> tuple[int, int]:
    """Output (height, width) of a descriptor's pool on a ch x cw plane."""
    kh, kw, s, (pt, pb, pl, pr) = pool_window(d, ch, cw)
    return conv_out(ch, kh, s, pt, pb), conv_out(cw, kw, s, pl, pr)


def unsupported_features(d) -> list[tuple[str, str]]:
    """Graph features a descriptor uses that the RTL does not run yet (the
    engine reports UNSUPPORTED), as (field, what) pairs; uz_desc_check tests
    the same fields."""
    d = _as_desc(d)
    out = []
    if d.groups > 1 and not depthwise(d):
        out.append(("groups", f"grouped convolution other than depthwise (groups={d.groups}, in_c={d.in_c}, "
                              f"out_c={d.out_c}; the compiler lowers these to dense channel-slice layers)"))
    if d.in_shuffle > 1:
        out.append(("in_shuffle", f"channel shuffle (in_shuffle={d.in_shuffle})"))
    # Channel slices (in_c_off, in_c_total, out_c_off, out_c_total), the
    # clip (ReLU6), the residual add and every pool (average, global, any
    # window and pads) run on the RTL: check() states their legality.
    return out


def depthwise(d) -> bool:
    """A depthwise convolution: one group per channel, one output per input
    channel (groups = in_c = out_c). The engine runs it with per-PE operand
    selection: PE p convolves channel p of the window word with its own
    taps (docs/architecture.md, "Depthwise")."""
    d = _as_desc(d)
    return d.groups > 1 and d.groups == d.in_c == d.out_c


def packed_taps(d, pn: int) -> bool:
    """A grouped layer with fewer than PN input channels per group stores each
    output channel's (in_c/groups)*K*K weights packed, padded to a multiple of
    PN (wvec_len), instead of padding the group's channels to PN: a depthwise
    3x3 layer reads 16 weights per channel at PN = 16, not 144."""
    d = _as_desc(d)
    return d.groups > 1 and d.kind == Kind.CONV and d.in_c // d.groups < pn


def wvec_len(d, pn: int) -> int:
    """Weights per output channel in memory and in the weight buffer: the
    (in_c/groups, K, K) vector, its channels padded to PN, or packed
    (packed_taps) and padded to a multiple of PN."""
    d = _as_desc(d)
    cin = d.in_c // max(1, d.groups)
    if packed_taps(d, pn):
        # a decomposed kernel: each sub-window's taps packed and padded apart
        # (the compute takes a sub-window's steps from whole words)
        s = sub_windows(d.k)
        return s * s * _round_up(cin * window_k(d.k) ** 2, pn)
    return _round_up(cin, pn) * d.k * d.k


def identity_pool(d) -> bool:
    """A POOL layer whose window is one cell (pool_kh = pool_kw = 1, stride 1,
    no padding): it copies its input (with ReLU or clip), which the compiler
    uses to copy a tensor into a concatenation's slot and for a ReLU/clip no
    layer can take. The engine runs it as a POOL without pooling."""
    d = _as_desc(d)
    return (d.kind == Kind.POOL and d.pool_kh == 1 and d.pool_kw == 1 and d.pool_s == 1 and d.pool_pad == 0
            and not (d.pool_asym or d.pool_avg or d.pool_global))


def _as_desc(d) -> Descriptor:
    return d if isinstance(d, Descriptor) else Descriptor(dict(d))


def check(d, cfg: EngineConfig, engine: bool = True) -> None:
    """Raise DescriptorError (with its engine error code) for the first illegal
    field, in the order of the Err codes; return None for a legal descriptor.

    ``engine``: what this engine's RTL accepts, which refuses the graph
    features it does not run yet (UNSUPPORTED); the functional model checks
    with engine=False and runs them."""
    d = _as_desc(d)

    def fail(code, msg, fieldname=""):
        raise DescriptorError(msg, code=int(code), field=fieldname)

    if d.magic != MAGIC:
        fail(Err.BAD_MAGIC, f"magic is 0x{d.magic:02X}, expected 0x{MAGIC:02X}", "magic")
    if d.kind not in tuple(Kind):
        fail(Err.BAD_KIND, f"unknown layer kind {d.kind}", "kind")
    kind = Kind(d.kind)
    if engine and unsupported_features(d):
        unsup = unsupported_features(d)
        fail(Err.UNSUPPORTED, "the engine does not run " + ", ".join(f"{w} ({f})" for f, w in unsup) + " yet",
             unsup[0][0])
    for name in ("in_c", "in_h", "in_w", "out_c", "out_h", "out_w"):
        if getattr(d, name) == 0:
            fail(Err.ZERO_DIM, f"{name} is zero", name)
    if kind != Kind.POOL:
        if d.k not in KERNELS + DECOMPOSED:
            fail(Err.BAD_KERNEL, f"kernel size k={d.k} not supported (supported: {KERNELS}, and {DECOMPOSED} "
                 f"as {SUB_K}x{SUB_K} sub-windows)", "k")
        # a decomposed kernel runs on a SUB_K window whatever max_k
        if d.k not in DECOMPOSED and d.k > cfg.max_k:
            fail(Err.BAD_KERNEL, f"kernel size k={d.k} larger than the engine's window (max_k={cfg.max_k})", "k")
        if d.k in DECOMPOSED and cfg.max_k < SUB_K:
            fail(Err.BAD_KERNEL, f"decomposed kernel k={d.k} runs as {SUB_K}x{SUB_K} sub-windows, larger than the "
                 f"engine's window (max_k={cfg.max_k})", "k")
        if kind == Kind.FC and d.k != 1:
            fail(Err.BAD_KERNEL, f"FC layer with kernel size k={d.k} (must be 1)", "k")
        # sub-windows accumulate like input-channel groups (dense) or like a
        # depthwise channel's further windows: not in other grouped layers
        if d.k in DECOMPOSED and d.groups > 1 and not depthwise(d):
            fail(Err.BAD_KERNEL, f"decomposed kernel k={d.k} on a grouped layer (groups={d.groups}); "
                 f"sub-windows run dense and depthwise convolutions only", "k")
        if d.k in DECOMPOSED and _round_up(d.in_c, cfg.pn) * sub_windows(d.k) ** 2 > DECOMPOSED_CHANNELS_MAX:
            # the loader counts the weights of a channel as in_c rounded up to
            # PN times the sub-windows, in 16 bits
            fail(Err.BAD_KERNEL, f"decomposed kernel k={d.k} on in_c={d.in_c}: {sub_windows(d.k) ** 2} sub-windows "
                 f"times {_round_up(d.in_c, cfg.pn)} channels is more than {DECOMPOSED_CHANNELS_MAX}", "k")
        if d.stride not in STRIDES:
            fail(Err.BAD_STRIDE, f"stride {d.stride} not supported (supported: 1..4)", "stride")
        if kind == Kind.FC and d.stride != 1:
            fail(Err.BAD_STRIDE, f"FC layer with stride {d.stride} (must be 1)", "stride")
        for name in ("pad_t", "pad_b", "pad_l", "pad_r"):
            if getattr(d, name) >= d.k:
                fail(Err.BAD_PAD, f"{name}={getattr(d, name)} not smaller than kernel {d.k}", name)
        if d.k > d.in_h + d.pad_t + d.pad_b or d.k > d.in_w + d.pad_l + d.pad_r:
            fail(Err.KERNEL_TOO_LARGE,
                 f"kernel k={d.k} larger than the padded input "
                 f"{d.in_h + d.pad_t + d.pad_b}x{d.in_w + d.pad_l + d.pad_r}", "k")
    pooled = kind == Kind.POOL or (kind == Kind.CONV and d.pool)
    if kind == Kind.FC and d.pool:
        fail(Err.BAD_POOL, "FC layer with a fused pool (pool=1)", "pool")
    if kind == Kind.POOL:
        ch, cw = d.in_h, d.in_w
    else:
        ch, cw = conv_dims(d)
    kh, kw, _, (ppt, ppb, ppl, ppr) = pool_window(d, ch, cw)
    if pooled and not d.pool_global:
        if d.pool_kh == 0 and d.pool_kw == 0 and d.pool_k not in (2, 3):
            fail(Err.BAD_POOL, f"pool window pool_k={d.pool_k} not supported (2 or 3)", "pool_k")
        if kh == 0 or kw == 0:
            fail(Err.BAD_POOL, f"pool window {kh}x{kw} has a zero side (pool_kh={d.pool_kh}, pool_kw={d.pool_kw}, "
                 f"pool_k={d.pool_k})", "pool_kh" if kh == 0 else "pool_kw")
        if not 1 <= d.pool_s <= 3:
            fail(Err.BAD_POOL, f"pool stride pool_s={d.pool_s} not supported (1..3)", "pool_s")
        if ppt >= kh or ppb >= kh or ppl >= kw or ppr >= kw:
            fail(Err.BAD_POOL, f"pool padding pool_pad (top, bottom, left, right) {(ppt, ppb, ppl, ppr)} not smaller "
                 f"than the window {kh}x{kw}", "pool_pad")
        if kh > ch + ppt + ppb or kw > cw + ppl + ppr:
            fail(Err.BAD_POOL, f"pool window pool_k {kh}x{kw} larger than its padded input {ch}x{cw}", "pool_k")
    if pooled and d.pool_avg and kind != Kind.POOL:
        fail(Err.BAD_POOL, "an average pool (pool_avg) fused into a convolution (only a POOL layer averages)",
             "pool_avg")
    if pooled and d.pool_avg and kh * kw > AVG_N_MAX:
        # the engine's divider (uz_post) is sized for divisors up to AVG_N_MAX
        what = "pool_global: the whole plane" if d.pool_global else f"pool_kh x pool_kw = {kh}x{kw}"
        fail(Err.BAD_POOL, f"average pool window ({what}) of {kh * kw} cells, more than the {AVG_N_MAX} the "
             f"engine divides by", "pool_global" if d.pool_global else "pool_kh")
    if pooled:
        eh, ew = pool_dims(d, ch, cw)
    else:
        eh, ew = ch, cw
    if kind == Kind.POOL and d.out_c != d.in_c:
        fail(Err.SHAPE_MISMATCH, f"pool layer with out_c={d.out_c} != in_c={d.in_c}", "out_c")
    groups = max(1, d.groups)
    if groups > 1 and (kind != Kind.CONV or d.in_c % groups or d.out_c % groups):
        fail(Err.SHAPE_MISMATCH, f"groups={groups} must divide in_c={d.in_c} and out_c={d.out_c} of a CONV layer",
             "groups")
    if d.in_shuffle > 1 and d.in_c % d.in_shuffle:
        fail(Err.SHAPE_MISMATCH, f"channel shuffle of {d.in_shuffle} groups does not divide in_c={d.in_c}",
             "in_shuffle")
    if d.in_c_off + d.in_c > max(d.in_c_total, d.in_c):
        fail(Err.SHAPE_MISMATCH, f"input channels {d.in_c_off}..{d.in_c_off + d.in_c - 1} (in_c_off={d.in_c_off}, "
             f"in_c={d.in_c}) lie outside the {max(d.in_c_total, d.in_c)}-channel tensor (in_c_total={d.in_c_total})",
             "in_c_off")
    if d.out_c_off + d.out_c > max(d.out_c_total, d.out_c):
        fail(Err.SHAPE_MISMATCH, f"output channels {d.out_c_off}..{d.out_c_off + d.out_c - 1} (out_c_off="
             f"{d.out_c_off}, out_c={d.out_c}) lie outside the {max(d.out_c_total, d.out_c)}-channel tensor "
             f"(out_c_total={d.out_c_total})", "out_c_off")
    if d.res and kind == Kind.POOL:
        fail(Err.SHAPE_MISMATCH, "a residual add on a POOL layer", "res")
    if (d.out_h, d.out_w) != (eh, ew):
        fail(Err.SHAPE_MISMATCH, f"output out_h x out_w = {d.out_h}x{d.out_w} but the input and kernel give {eh}x{ew}",
             "out_h" if d.out_h != eh else "out_w")
    if kind == Kind.FC and (d.in_h, d.in_w) != (1, 1):
        fail(Err.SHAPE_MISMATCH, f"FC input must be Nx1x1, got in_h x in_w = {d.in_h}x{d.in_w}",
             "in_h" if d.in_h != 1 else "in_w")
    # Tiles: tr/tc count convolution outputs; ti/to channels.
    for name in ("tr", "tc", "ti", "to"):
        if getattr(d, name) == 0:
            fail(Err.BAD_TILE, f"tile size {name} is zero", name)
    if d.tr > ch or d.tc > cw:
        fail(Err.BAD_TILE, f"tile tr x tc = {d.tr}x{d.tc} larger than the {ch}x{cw} output",
             "tr" if d.tr > ch else "tc")
    if pooled and (d.tr < ch or d.tc < cw):
        # Pool windows must not straddle tiles: only non-overlapping,
        # unpadded pools tile, on tile edges that are multiples of the stride.
        if kh != d.pool_s or kw != d.pool_s or ppt or ppb or ppl or ppr or d.pool_global:
            fail(Err.BAD_TILE, f"tile tr x tc = {d.tr}x{d.tc} splits the {ch}x{cw} plane, but pool "
                 f"{kh}x{kw}/{d.pool_s} pads {(ppt, ppb, ppl, ppr)} needs the whole plane in one tile", "tr")
        # only a dimension the tiles split needs stride-aligned tile edges
        split_r = d.tr < ch and d.tr % d.pool_s
        split_c = d.tc < cw and d.tc % d.pool_s
        if split_r or split_c:
            fail(Err.BAD_TILE, f"tile tr x tc = {d.tr}x{d.tc} splits the {ch}x{cw} plane off the pool "
                 f"stride {d.pool_s}", "tr" if split_r else "tc")
    cin = d.in_c // groups      # the inputs one output channel reads
    cout = d.out_c
    if depthwise(d):
        # each output channel reads its own input channel: the tile's inputs
        # are its outputs' channels, as in a POOL layer
        if d.ti != d.to:
            fail(Err.BAD_TILE, f"depthwise layer with ti={d.ti} != to={d.to}", "ti")
    elif kind != Kind.POOL and d.ti > _round_up(cin, cfg.pn):
        # (a POOL's ti is its to, bounded by out_c = in_c rounded up to PM below)
        fail(Err.BAD_TILE, f"ti={d.ti} exceeds in_c={cin} rounded up to PN={cfg.pn}", "ti")
    if d.ti % cfg.pn:
        fail(Err.BAD_TILE, f"ti={d.ti} not a multiple of PN={cfg.pn}", "ti")
    if kind == Kind.POOL and d.to != d.ti:
        fail(Err.BAD_TILE, f"pool layer with to={d.to} != ti={d.ti}", "to")
    # every kind, a POOL too: the compute runs oc-groups of PM
    if d.to % cfg.pm:
        fail(Err.BAD_TILE, f"to={d.to} not a multiple of PM={cfg.pm}", "to")
    if d.to > _round_up(cout, cfg.pm):
        fail(Err.BAD_TILE, f"to={d.to} exceeds out_c={cout}", "to")
    # OVSF blocks never straddle ti-tiles: ti is a multiple of PN, which
    # EngineConfig requires to be a multiple of the block length.
    for name in ("bias_shift", "data_shift", "gen_shift"):
        v = getattr(d, name)
        if not SHIFT_MIN <= v <= SHIFT_MAX:
            fail(Err.BAD_SHIFT, f"{name}={v} outside [{SHIFT_MIN}, {SHIFT_MAX}]", name)
    if d.res and not SHIFT_MIN <= d.res_shift <= SHIFT_MAX:
        fail(Err.BAD_SHIFT, f"res_shift={d.res_shift} outside [{SHIFT_MIN}, {SHIFT_MAX}]", "res_shift")
    if d.clip and d.clip_hi > (1 << (cfg.data_bits - 1)) - 1:
        fail(Err.BAD_SHIFT, f"clip bound clip_hi={d.clip_hi} above the largest {cfg.data_bits}-bit value", "clip_hi")
    if kind == Kind.POOL and d.data_shift != 0:
        fail(Err.BAD_SHIFT, f"pool layer with data_shift={d.data_shift} (must be 0)", "data_shift")
    if d.ovsf:
        gen_lo, gen_hi = gen_shift_range(cfg)
        if not gen_lo <= d.gen_shift <= gen_hi:
            fail(Err.BAD_SHIFT, f"OVSF layer with gen_shift={d.gen_shift} outside [{gen_lo}, {gen_hi}]: the weights "
                 f"generator's shift covers only that range (alpha_bits={cfg.alpha_bits}, data_bits={cfg.data_bits}, "
                 f"L={cfg.ovsf_len})", "gen_shift")
        if kind == Kind.POOL:
            fail(Err.BAD_CODES, "pool layer with OVSF weights (ovsf=1)", "ovsf")
        length = 1 << d.log2_l
        if length != cfg.ovsf_len:
            fail(Err.BAD_CODES, f"OVSF block length 2**log2_l={length} but the engine generates blocks of {cfg.ovsf_len}", "log2_l")
        if d.code_mask >> length:
            fail(Err.BAD_CODES, f"code_mask=0x{d.code_mask:X} selects codes beyond L={length}", "code_mask")
        if not 1 <= d.n_codes <= length:
            fail(Err.BAD_CODES, f"n_codes={d.n_codes} not in 1..{length}", "n_codes")
        if bin(d.code_mask).count("1") != d.n_codes:
            fail(Err.BAD_CODES, f"code_mask=0x{d.code_mask:X} keeps {bin(d.code_mask).count('1')} codes, n_codes says {d.n_codes}", "n_codes")
    for name in ("in_addr", "out_addr", "wgt_addr", "bias_addr"):
        if getattr(d, name) % cfg.bus_bytes:
            fail(Err.BAD_ALIGN, f"{name}=0x{getattr(d, name):X} not aligned to the {cfg.bus_bytes}-byte bus", name)
    if d.res and d.res_addr % cfg.bus_bytes:
        fail(Err.BAD_ALIGN, f"res_addr=0x{d.res_addr:X} not aligned to the {cfg.bus_bytes}-byte bus", "res_addr")
    for name in ("in_c_off", "out_c_off"):
        if getattr(d, name) % cfg.pn:
            fail(Err.BAD_ALIGN, f"{name}={getattr(d, name)} not a multiple of PN={cfg.pn} (slices start on a word)", name)
    for why, need, have in tile_footprint(d, cfg):
        if need > have:
            fail(Err.TOO_LARGE, f"{why} of tr={d.tr} tc={d.tc} ti={d.ti} to={d.to} needs {need} elements, the buffer holds {have}", "tr")
    if kind != Kind.POOL:
        # the engine counts a layer's convolution rows and columns in 16 bits;
        # only a fused pool brings a larger result back to 16-bit out_h/out_w
        ch, cw = conv_dims(d)
        if max(ch, cw) > 0xFFFF:
            fail(Err.TOO_LARGE, f"convolution result {ch}x{cw} before the pool exceeds the engine's 16-bit sizes", "in_h")


def validate(d, cfg: EngineConfig, engine: bool = True) -> Err:
    """The error code the engine reports for this descriptor (Err.NONE if legal);
    engine=False: the functional model's verdict (graph features allowed)."""
    try:
        check(d, cfg, engine)
    except DescriptorError as e:
        return Err(e.code)
    return Err.NONE


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def in_tile_dims(d) -> tuple[int, int]:
    """Input rows/cols one tile of tr x tc convolution outputs reads (with halo)."""
    if d.kind == Kind.POOL:
        return d.tr, d.tc
    return (d.tr - 1) * d.stride + d.k, (d.tc - 1) * d.stride + d.k


def tile_footprint(d, cfg: EngineConfig):
    """(what, elements needed, elements available) for each on-chip buffer."""
    ih, iw = in_tile_dims(d)
    out = [("input tile", d.ti * ih * iw, cfg.in_buf_elems),
           ("output tile", d.to * d.tr * d.tc, cfg.out_buf_elems)]
    if d.kind != Kind.POOL:
        per_channel = wvec_len(d, cfg.pn) if packed_taps(d, cfg.pn) else d.ti * d.k * d.k
        out.append(("weight tile", d.to * per_channel, cfg.wgt_buf_elems))
    return out
