"""One engine configuration drives the golden model, the compiler, the RTL
parameters and the tests (the same numbers everywhere)."""
from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass

from .errors import UzError


@dataclass(frozen=True)
class EngineConfig:
    #: Activation and weight width (16 default; 8 also supported).
    data_bits: int = 16
    #: Accumulator width. The compiler rejects a layer that could overflow it.
    acc_bits: int = 48
    #: PEs = output channels computed in parallel; a multiple of pn (an
    #: output pixel word of the accumulators is pm/pn layout groups), not
    #: necessarily a power of two (48 x 16 fills a ZC706's DSPs).
    pm: int = 16
    #: Lanes per PE = reduction parallelism; also the channel-group size of the
    #: activation layout in memory (one buffer word = one pixel of pn channels).
    pn: int = 16
    #: OVSF block length L (power of two): weights are generated L at a time.
    ovsf_len: int = 16
    #: Width of an OVSF coefficient alpha as stored in memory (8 or 16 bits).
    alpha_bits: int = 16
    #: AXI data bus width in bits.
    axi_data_bits: int = 128
    #: OVSF blocks the weights generator rebuilds per cycle (RTL GenLanes), at
    #: most pm (each goes to its own weight-buffer bank). 0 = as many as a bus
    #: beat holds at one code per block, min(pm, axi_data_bits / alpha_bits),
    #: so the generator keeps up with the memory at any rho; see gen_blocks.
    gen_lanes: int = 0
    #: On-chip buffer capacities, in elements, per half of each double buffer.
    in_buf_elems: int = 64 * 1024
    wgt_buf_elems: int = 64 * 1024
    out_buf_elems: int = 32 * 1024
    #: The largest kernel the compute's window holds (RTL MaxK): one of the
    #: kernel sizes the engine knows (golden.isa.KERNELS). The window and its
    #: operand selection grow with it (docs/architecture.md, "Resources").
    max_k: int = 3
    #: Neighbouring input words (columns) the compute's column fetcher reads
    #: a cycle (RTL InReads: uz_in_buf's banks): 2, 4 or 8. A row of
    #: output pixels fetches ceil(columns / in_reads) groups of K cycles.
    in_reads: int = 4

    def __post_init__(self):
        def pow2(v):
            return v > 0 and (v & (v - 1)) == 0

        # Every field is a count of bits, lanes or elements: a JSON string,
        # float, boolean or null is named here, not met later as a TypeError.
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool):
                raise UzError(f"{f.name} must be an integer, not {v!r}")
            if v <= 0 and f.name != "gen_lanes":     # gen_lanes 0: automatic (checked below)
                raise UzError(f"{f.name} must be positive, not {v}")
        if self.data_bits not in (8, 16):
            raise UzError(f"data_bits must be 8 or 16, not {self.data_bits}")
        if self.alpha_bits not in (8, 16):
            raise UzError(f"alpha_bits must be 8 or 16, not {self.alpha_bits}")
        if not 2 * self.data_bits <= self.acc_bits <= 53:
            # 53: accumulations stay exact in float64, which the golden model's
            # fast convolution relies on.
            raise UzError(f"acc_bits must be in [{2 * self.data_bits}, 53], not {self.acc_bits}")
        for name in ("pn", "ovsf_len"):
            if not pow2(getattr(self, name)):
                raise UzError(f"{name} must be a power of two, not {getattr(self, name)}")
        if not 2 <= self.ovsf_len <= 32:
            raise UzError(f"ovsf_len must be in 2..32, not {self.ovsf_len}")
        if self.pm % self.pn or self.pm < self.pn:
            # An output pixel of PM channels is PM/PN whole channel groups of
            # the layout (the write-back writes them group by group).
            raise UzError(f"pm {self.pm} must be a multiple of pn {self.pn}")
        if self.ovsf_len > self.pn:
            # A block must not straddle a channel group of the weight buffer.
            raise UzError(f"ovsf_len {self.ovsf_len} must divide pn {self.pn}")
        if self.axi_data_bits not in (32, 64, 128, 256, 512):
            raise UzError(f"axi_data_bits must be 32..512 and a power of two, not {self.axi_data_bits}")
        if self.max_k not in (1, 3, 5, 7, 11):      # golden.isa.KERNELS
            raise UzError(f"max_k must be a kernel size the engine knows (1, 3, 5, 7, 11), not {self.max_k}")
        if self.in_reads not in (2, 4, 8):
            raise UzError(f"in_reads must be 2, 4 or 8, not {self.in_reads}")
        if not 0 <= self.gen_lanes <= self.pm:
            raise UzError(f"gen_lanes must be in 1..pm ({self.pm}), or 0 for automatic, not {self.gen_lanes}")

    @property
    def gen_blocks(self) -> int:
        """Blocks the weights generator rebuilds per cycle (gen_lanes, resolved)."""
        return self.gen_lanes or max(1, min(self.pm, self.axi_data_bits // self.alpha_bits))

    def gen_group(self, n_codes: int) -> int:
        """Blocks the generator takes together in a layer of ``n_codes``
        codes (RTL uz_loader glog_q): the largest power of two up to
        gen_blocks that divides pm and whose alphas, n_codes each, are at
        most ovsf_len + 1 (the loader's alpha queue takes a beat while it
        holds at most ovsf_len, so it always comes to hold a group). A group
        starts at a bank that is a multiple of it, so each weight-buffer
        bank takes a fixed block of it."""
        g = 1
        while 2 * g <= self.gen_blocks and self.pm % (2 * g) == 0 and 2 * g * n_codes <= self.ovsf_len + 1:
            g *= 2
        return g

    @property
    def elem_bytes(self) -> int:
        return self.data_bits // 8

    @property
    def alpha_bytes(self) -> int:
        return self.alpha_bits // 8

    @property
    def bus_bytes(self) -> int:
        return self.axi_data_bits // 8

    def rtl_buildable(self) -> None:
        """The RTL's extra rules (uz_top's and uz_layer's elaboration checks):
        a pixel word (pn elements) and a row of pm alphas are whole bus
        beats, and each buffer half holds a power of two of its words (an
        address is {half, word}), so in_buf_elems / pn, wgt_buf_elems /
        (pm * pn) and out_buf_elems / pm are powers of two. The compiler and
        the analytical model take any sizes."""
        if (self.pn * self.data_bits) % self.axi_data_bits:
            raise UzError(f"a pixel word of pn {self.pn} x {self.data_bits} bits is not whole "
                          f"{self.axi_data_bits}-bit bus beats")
        if (self.pm * self.alpha_bits) % self.axi_data_bits:
            raise UzError(f"a row of pm {self.pm} alphas of {self.alpha_bits} bits is not whole "
                          f"{self.axi_data_bits}-bit bus beats")
        for name, word in (("in_buf_elems", self.pn), ("wgt_buf_elems", self.pm * self.pn),
                           ("out_buf_elems", self.pm)):
            elems = getattr(self, name)
            words = elems // word
            if elems % word or words & (words - 1):
                raise UzError(f"{name} {elems} is not a power of two of {word}-element words: "
                              "the RTL addresses a buffer half as {half, word}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EngineConfig":
        if not isinstance(d, dict):
            raise UzError(f"an engine configuration is a JSON object of fields, not {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UzError(f"unknown engine configuration keys: {sorted(unknown)}")
        return cls(**d)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


DEFAULT = EngineConfig()
