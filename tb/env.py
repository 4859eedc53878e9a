"""The uz verification environment (pyuvm).

    UzEnv
    |- CtrlAgent   sequencer + ProgramDriver: loads a program's memory image,
    |              starts it through the registers, waits for the end
    |- MemAgent    configures the memory model's stall pattern
    |- monitors    GenMonitor, BiasMonitor, ShiftMonitor, LayerMonitor,
    |              MemoryMonitor: turn the BFM's probe samples and memory
    |              reads into transactions per program; ResidualMonitor: a
    |              run_phase loop publishing each residual add as it comes
    |- scoreboards WeightsScoreboard (per generated block), BiasScoreboard,
    |              ShiftScoreboard (accumulator before, value after the data
    |              shift), ResidualScoreboard (both operands of the residual
    |              add after alignment, and the sum), LayerScoreboard (each
    |              layer's output tensor),
    |              StatusScoreboard (done or the expected error code),
    |              MemoryScoreboard (no write outside the output regions)
    |- coverage    FunctionalCoverage (per layer, tb/funcov.py)

Expected values come from golden/: the program's descriptors are executed on
the functional model (golden.funcmodel.trace_descriptor), which is what the
RTL must match bit for bit. Scoreboards collect mismatches while the test
runs and fail the test in check_phase.
"""
from __future__ import annotations

import numpy as np
from pyuvm import (ConfigDB, uvm_agent, uvm_analysis_port, uvm_component, uvm_driver, uvm_env,
                   uvm_sequence_item, uvm_sequencer, uvm_subscriber)

from golden import arith, compiler, funcmodel, isa, memimage

from cocotb.triggers import SimTimeoutError

from .bfm import ABORT, CTRL, DONE, ERROR, IRQ_EN, STATUS

MAX_REPORT = 5


# ------------------------------------------------------------ transactions

class ProgramItem(uvm_sequence_item):
    """A compiled program with its input written into the image."""

    def __init__(self, name, prog, label="", expect_err=0, expect_err_layer=0, stall="none"):
        super().__init__(name)
        self.prog = prog
        self.label = label or name
        self.expect_err = expect_err              # 0: the program must complete
        self.expect_err_layer = expect_err_layer
        self.stall = stall
        self.abort_after = None                   # cycles after START to write ABORT
        self.fault = None                         # (read|write, nth beat): inject SLVERR
        self.pokes = []                           # other register writes: (cycles, addr, value)
        self.reset_after = None                   # cycles after START to pull the reset
        self.fault_plan = None                    # what the BFM did with it
        self.traces = []                          # golden traces of the layers that completed
        self.descs = []                           # the descriptors the engine reads (isa.Descriptor)
        self.result = None                        # (status, err, err_layer, cycles)
        self.counters = []
        self.watchdog = None                      # cycle bound (None: watchdog_cycles)
        self.hung = False                         # no end within the watchdog
        self.golden_layers = None                 # the golden model runs at most this many layers
        self.layer_count = None                   # LAYER_COUNT written (None: the program's layers)

    @property
    def disturbed(self) -> bool:
        """An abort or bus error was requested: the end is not known ahead."""
        return self.abort_after is not None or self.fault is not None or self.reset_after is not None

    def __str__(self):
        return f"{self.label} ({len(self.prog.layers)} layers)"


class ResidualAdd(uvm_sequence_item):
    """One residual add of the write-back stage: PN lanes of one pixel, the
    accumulator before the add, the residual as read and as aligned, and the
    sum (tb.bfm.ResidualSample), of the program ``item``."""

    def __init__(self, name, item, sample):
        super().__init__(name)
        self.item = item
        self.layer, self.o0, self.y, self.x = sample.layer, sample.o0, sample.y, sample.x
        self.acc = list(sample.acc)
        self.res = list(sample.res)
        self.res_al = list(sample.res_al)
        self.sum = list(sample.sum)

    def __str__(self):
        return f"layer {self.layer} channels {self.o0}.. at (y {self.y}, x {self.x})"


class ObservedLayer(uvm_sequence_item):
    def __init__(self, name, item, layer, tensor):
        super().__init__(name)
        self.item = item
        self.layer = layer
        self.tensor = tensor


# ------------------------------------------------------------------ agents

class ProgramDriver(uvm_driver):
    def build_phase(self):
        self.bfm = ConfigDB().get(self, "", "BFM")
        self.started = uvm_analysis_port("started", self)    # program about to run
        self.finished = uvm_analysis_port("finished", self)  # program ended

    async def run_phase(self):
        while True:
            item = await self.seq_item_port.get_next_item()
            prog = item.prog
            cfg = prog.cfg
            # the golden run of the same image, layer by layer
            img = memimage.MemoryImage()
            img.data = bytearray(prog.image.data)
            item.traces = []
            item.descs = []
            n_layers = len(prog.layers) if item.layer_count is None else item.layer_count
            # a layer whose regions lie outside memory stops on a bus error:
            # the golden model does not run it (golden_layers)
            golden_layers = n_layers if item.golden_layers is None else min(n_layers, item.golden_layers)
            for i in range(golden_layers):
                d = isa.Descriptor.decode(img.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
                if isa.validate(d, cfg) != isa.Err.NONE:
                    break
                item.descs.append(d)
                item.traces.append(funcmodel.execute_descriptor(img, d, cfg))
            self.bfm.set_stall(item.stall)
            self.bfm.load(0, bytes(prog.image.data))
            self.started.write(item)
            budget = watchdog_cycles(item) if item.watchdog is None else item.watchdog
            self.logger.info(f"running {item.label}: watchdog {budget} cycles")
            item.fault_plan = self.bfm.inject_fault(*item.fault) if item.fault else None
            pokes = list(item.pokes)
            if item.abort_after is not None:
                pokes.append((item.abort_after, CTRL, ABORT | IRQ_EN))
            try:
                item.result = await self.bfm.run_program(prog.desc_addr, n_layers, budget,
                                                         pokes=sorted(pokes, key=lambda p: p[0]),
                                                         reset_after=item.reset_after)
            except SimTimeoutError:
                # A hang is a failure of this program (StatusScoreboard), not
                # the end of the test: only a reset frees the engine for the next.
                item.hung = True
                self.logger.error(f"{item.label}: HANG, no end within the watchdog of {budget} cycles")
                await self.bfm.reset()
                item.result = (await self.bfm.csr_read(STATUS), 0, 0, budget)
            self.bfm.fault = None
            status, err, err_layer, cycles = item.result
            end = (f"stopped with {isa.Err(err).name if err in tuple(isa.Err) else err} at layer {err_layer}"
                   if status & ERROR else "done")
            if item.reset_after is not None:
                end = f"reset (then status 0x{status:x}, error register 0x{err:x})"
            if item.hung:
                end = "hung"
            self.logger.info(f"{item.label}: {end} after {cycles} cycles")
            if item.reset_after is not None or item.hung:
                item.traces = []          # which layers completed before the reset is not known
            elif status & ERROR:
                # only the layers before the one that stopped completed
                item.traces = item.traces[:err_layer]
            item.counters = [await self.bfm.layer_counters(i) for i in range(len(item.traces))]
            self.finished.write(item)
            self.seq_item_port.item_done()


#: Bytes checked beyond the end of a program's image for stray writes.
GUARD_BYTES = 64 * 1024


def guarded_span(prog) -> int:
    """The memory a program's stray writes are looked for in: its image and a
    guard zone after it (every region lies inside the image)."""
    end = max(r.addr + r.size for r in prog.image.regions)
    return end + GUARD_BYTES


def watchdog_cycles(item) -> int:
    """A bound no legal run of the program reaches: a few times the work of
    every layer, counted as if nothing overlapped (PE steps and window reads
    per tile pass, memory beats at one per cycle)."""
    prog = item.prog
    cfg = prog.cfg
    total = 20_000
    for i, t in enumerate(item.traces):
        q = prog.layers[i]
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
        k2 = max(1, d.k) ** 2
        pixels = int(np.prod(t.acc.shape[1:]))
        groups_in = -(-d.in_c // cfg.pn)
        groups_out = -(-d.out_c // cfg.pm)
        steps = pixels * groups_in * (groups_out + 1) * k2
        to_tiles = -(-groups_out * cfg.pm // max(1, d.to))
        beats = (t.x.size * to_tiles + t.acc.size + (0 if t.w is None else t.w.size)) * cfg.data_bits // cfg.axi_data_bits
        total += 4 * (steps + 8 * beats) + 5_000 * to_tiles
    return total


class CtrlAgent(uvm_agent):
    def build_phase(self):
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = ProgramDriver("driver", self)

    def connect_phase(self):
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)


class MemAgent(uvm_agent):
    """The memory model lives in the BFM; this agent owns its configuration."""

    def build_phase(self):
        self.bfm = ConfigDB().get(self, "", "BFM")
        try:
            self.stall = ConfigDB().get(self, "", "STALL")
        except Exception:  # ConfigDB raises when the key was never set
            self.stall = "none"

    def start_of_simulation_phase(self):
        self.bfm.set_stall(self.stall)


# ---------------------------------------------------------------- monitors

class ProbeMonitor(uvm_component):
    """Collects the BFM's probe samples of one program and publishes them when
    the program ends, tagged with the program."""
    probe = ""

    def build_phase(self):
        self.bfm = ConfigDB().get(self, "", "BFM")
        self.ap = uvm_analysis_port("ap", self)
        self.mark = 0

    def on_started(self, item):
        self.mark = len(getattr(self.bfm.probes, self.probe))

    def on_finished(self, item):
        samples = getattr(self.bfm.probes, self.probe)[self.mark:]
        for s in samples:
            self.ap.write((item, self.transform(s)))

    def transform(self, sample):
        return sample


class GenMonitor(ProbeMonitor):
    probe = "gen"


class BiasMonitor(ProbeMonitor):
    probe = "bias"


class ShiftMonitor(ProbeMonitor):
    probe = "shift"


class ResidualMonitor(uvm_component):
    """The residual-add stage, in the form every monitor is moving to: its
    own run_phase loop takes each sample from the BFM's queue as the engine
    produces it and publishes it at once as a ResidualAdd transaction of the
    program running (told by the driver's start) on ``ap``. The scoreboard
    decides when to compare (after the program's end, when the layers that
    completed are known)."""

    def build_phase(self):
        self.bfm = ConfigDB().get(self, "", "BFM")
        self.ap = uvm_analysis_port("ap", self)
        self.item = None

    def on_started(self, item):
        self.item = item

    def on_finished(self, item):
        pass

    async def run_phase(self):
        while True:
            s = await self.bfm.res_queue.get()
            if self.item is not None:       # the engine adds only inside a program
                self.ap.write(self.transform(ResidualAdd("res", self.item, s)))

    def transform(self, tr):
        return tr


def layer_out_span(prog, i: int) -> tuple:
    """(addr, size) of the memory layer ``i`` writes: its output region, or,
    for a layer writing a channel slice of a larger tensor (a concatenation
    part, QLayer.out_slice), only its slice: round_up(out_c, PN) channels
    from slice_addr on (the pad channels of its last word included, which
    it writes as zeros)."""
    q = prog.layers[i]
    r = prog.image.region(prog.regions[q.name]["out"])
    if q.out_slice is None:
        return r.addr, r.size
    c, h, w = q.out_shape
    addr = funcmodel.slice_addr(r.addr, q.out_slice[0], h, w, prog.cfg)
    size = memimage.act_elems(q.out_shape, prog.cfg.pn) * prog.cfg.elem_bytes
    assert r.addr <= addr and addr + size <= r.addr + r.size, f"layer {q.name}: slice outside its tensor's region"
    return addr, size


class LayerMonitor(uvm_component):
    """Reads each finished layer's output from memory: its output region, or
    its own slice of it (layer_out_span)."""

    def build_phase(self):
        self.bfm = ConfigDB().get(self, "", "BFM")
        self.ap = uvm_analysis_port("ap", self)

    def on_started(self, item):
        pass

    def on_finished(self, item):
        prog = item.prog
        for i in range(len(item.traces)):
            q = prog.layers[i]
            addr, size = layer_out_span(prog, i)
            img = memimage.MemoryImage()
            img.write(addr, self.bfm.read_mem(addr, size))
            got = funcmodel.read_act(img, addr, q.out_shape, prog.cfg)[:q.out_shape[0]]
            self.ap.write(ObservedLayer("layer", item, i, self.transform(got)))

    def transform(self, tensor):
        return tensor


class MemorySnapshot(uvm_sequence_item):
    def __init__(self, name, item, before, after):
        super().__init__(name)
        self.item = item
        self.before = before
        self.after = after


class MemoryMonitor(uvm_component):
    """Memory a program may only write in its output regions: its image and a
    guard zone after it, read when the program starts and when it ends."""

    def build_phase(self):
        self.bfm = ConfigDB().get(self, "", "BFM")
        self.ap = uvm_analysis_port("ap", self)
        self.before = b""

    def on_started(self, item):
        self.before = self.bfm.read_mem(0, guarded_span(item.prog))

    def on_finished(self, item):
        after = self.bfm.read_mem(0, guarded_span(item.prog))
        self.ap.write(MemorySnapshot("mem", item, self.before, self.transform(after)))

    def transform(self, after: bytes) -> bytes:
        return after


class _Fanout(uvm_component):
    """Tells the monitors when a program starts and ends."""

    def build_phase(self):
        self.listeners = []

    def connect(self, driver, listeners):
        self.listeners = listeners
        self.started_cb = _Callback("started_cb", self, lambda it: [m.on_started(it) for m in listeners])
        self.finished_cb = _Callback("finished_cb", self, lambda it: [m.on_finished(it) for m in listeners])
        driver.started.connect(self.started_cb.analysis_export)
        driver.finished.connect(self.finished_cb.analysis_export)


class _Callback(uvm_subscriber):
    def __init__(self, name, parent, fn):
        super().__init__(name, parent)
        self.fn = fn

    def write(self, item):
        self.fn(item)


# ------------------------------------------------------------- scoreboards

def _config_flag(component, key) -> bool:
    try:
        return bool(ConfigDB().get(component, "", key))
    except Exception:  # ConfigDB raises when the key was never set
        return False


class _ProgramExport(uvm_subscriber):
    """A scoreboard's second input: every program the driver finished, so the
    scoreboard knows what it was meant to compare."""

    def write(self, item):
        self.get_parent().program_ended(item)


class Scoreboard(uvm_subscriber):
    """Collects mismatches; check_phase fails the test on any (or, in the
    tests that prove a checker works, on none).

    It also fails when it did not compare everything it was meant to: each
    subclass names, per finished program, the keys it expects (``expected``)
    and records the key of each observation it compares (``seen``). A
    monitor that never fired, or fired for part of a layer only, leaves
    keys missing."""
    #: what one key counts, for the messages
    unit = "observations"

    def build_phase(self):
        self.mismatches = []
        self.checked = 0
        self.programs = []        # every finished program (program_export)
        self.seen = set()
        self.program_export = _ProgramExport("program_export", self)
        self.expect_mismatch = _config_flag(self, "EXPECT_MISMATCH")
        self.expect_missing = _config_flag(self, "EXPECT_MISSING")

    def program_ended(self, item):
        self.programs.append(item)

    def fail(self, text):
        self.mismatches.append(text)
        if len(self.mismatches) <= MAX_REPORT:
            self.logger.error(text)

    def expected(self, item) -> set:
        """The keys this scoreboard must see for one finished program."""
        return set()

    def missing(self) -> tuple[int, list]:
        """(expected count, keys expected and never seen)."""
        exp = set()
        for item in self.programs:
            exp |= self.expected(item)
        return len(exp), sorted(exp - self.seen, key=repr)

    def check_phase(self):
        name = type(self).__name__
        n_exp, missing = self.missing()
        self.logger.info(f"{name}: {self.checked} checked, {len(self.mismatches)} mismatches, "
                         f"{n_exp - len(missing)} of {n_exp} expected {self.unit} seen")
        if self.expect_mismatch:
            assert self.mismatches, f"{name} saw no mismatch although the observed values were corrupted"
            return
        if self.expect_missing:
            # the test that proves this check: its monitor was silenced
            assert missing, f"{name} missed nothing of {n_exp} {self.unit} although its monitor was silenced"
            assert n_exp, f"{name} was meant to compare nothing: the test cannot show a miss"
            return
        assert not self.mismatches, (f"{name}: {len(self.mismatches)} mismatches; first: "
                                     + " | ".join(self.mismatches[:MAX_REPORT]))
        assert not missing, (f"{name} compared {n_exp - len(missing)} of {n_exp} {self.unit} it was meant to "
                             f"({self.checked} observations); first never seen: "
                             + "; ".join(self.describe(k) for k in missing[:MAX_REPORT]))

    def describe(self, key) -> str:
        return repr(key)


def _first_diffs(exp, got, labels):
    e = np.asarray(exp)
    g = np.asarray(got)
    bad = np.argwhere(e != g)
    return [f"{dict(zip(labels, map(int, idx)))}: expected {int(e[tuple(idx)])}, got {int(g[tuple(idx)])}"
            for idx in bad[:MAX_REPORT]], len(bad)


class WeightsScoreboard(Scoreboard):
    """Each generated block against the golden generation of that block.
    Meant to see every weight of the real channels of every OVSF layer: the
    in_c/groups input channels one output channel reads (a depthwise
    layer's: one), K*K taps each.

    A sample's f counts through one output channel's weight vector of a
    ci-group, f = c*K*K + tap. A layer with packed taps (isa.packed_taps:
    depthwise) has one vector per output channel, wvec_len long, its
    (in_c/groups)*K*K real weights first and generated padding after
    (compared too; the engine's lanes there read zeros); its sample's group
    is the tile's channel base, which the vector does not depend on."""
    unit = "generated weights"

    def expected(self, item):
        keys = set()
        for i, d in enumerate(item.descs[:len(item.traces)]):
            if d.ovsf and d.kind != isa.Kind.POOL:
                cin = d.in_c // max(1, d.groups)
                keys.update((id(item), i, o, c, tap) for o in range(d.out_c) for c in range(cin)
                            for tap in range(d.k * d.k))
        return keys

    def describe(self, key):
        item = next(p for p in self.programs if id(p) == key[0])
        return f"{item.label} layer {key[1]} weight (o {key[2]}, c {key[3]}, tap {key[4]})"

    def write(self, datum):
        item, s = datum
        if s.layer >= len(item.traces):
            return
        q = item.prog.layers[s.layer]
        d = item.descs[s.layer]
        t = item.traces[s.layer]
        cfg = item.prog.cfg
        k2 = d.k * d.k
        packed = isa.packed_taps(d, cfg.pn)
        # golden's weights per output channel as the flat vector in the
        # engine's order: (c, tap), or a decomposed kernel's (sub-window, c,
        # 3x3 tap), whose sample group counts (sub-window, ci-group) from the
        # tile's first ci-group
        cin_pad = t.w.shape[1]
        flat = memimage.engine_order(t.w)
        subs = isa.sub_windows(d.k)
        if subs > 1 and not packed:
            wk2 = isa.SUB_K * isa.SUB_K
            ng_tile = min(d.ti, cin_pad - s.tile_group * cfg.pn) // cfg.pn
            sub, gl = divmod(s.group - s.tile_group, ng_tile)
            base = sub * cin_pad * wk2 + (s.tile_group + gl) * cfg.pn * wk2
        else:
            base = 0 if packed else s.group * cfg.pn * k2
        limit = isa.wvec_len(d, cfg.pn) if packed else flat.shape[1]
        perm = memimage.engine_perm(cin_pad, d.k)
        # packed taps: the packed vector's f is this engine-order position
        where = (memimage.packed_index(cin_pad, d.in_c // max(1, d.groups), d.k, cfg.pn) if packed
                 else np.arange(flat.shape[1]))
        exp = []
        for f in range(s.f0, s.f0 + len(s.weights)):
            pos = base + f
            if not 0 <= s.o < flat.shape[0] or pos >= limit:
                exp.append(None)           # a weight the layer does not have
                continue
            exp.append(int(flat[s.o, where[pos]]))
            nat = int(perm[where[pos]])    # its (c, tap) in the K x K kernel
            self.seen.add((id(item), s.layer, s.o, nat // k2, nat % k2))
        self.checked += 1
        if exp != list(s.weights):
            diffs = [(i, e, g) for i, (e, g) in enumerate(zip(exp, s.weights)) if e != g]
            self.fail(f"{item.label} layer {q.name}: weight block of channel {s.o}, group {s.group}, "
                      f"f {s.f0}{' (packed taps)' if packed else ''}: {len(diffs)} of {len(exp)} differ; "
                      f"first (index, expected, actual) {diffs[:3]}")


class BiasScoreboard(Scoreboard):
    """The bias as aligned to the accumulator's fractional length. Meant to
    see every PE group's bias of every layer that adds one."""
    unit = "bias words"

    def expected(self, item):
        pm = item.prog.cfg.pm
        return {(id(item), i, o0) for i, d in enumerate(item.descs[:len(item.traces)])
                if d.bias and d.kind != isa.Kind.POOL for o0 in range(0, d.out_c, pm)}

    def describe(self, key):
        item = next(p for p in self.programs if id(p) == key[0])
        return f"{item.label} layer {key[1]} bias of channels {key[2]}.."

    def write(self, datum):
        item, s = datum
        if s.layer >= len(item.traces):
            return
        q = item.prog.layers[s.layer]
        t = item.traces[s.layer]
        exp = [int(v) for v in t.bias_aligned[s.o0:s.o0 + len(s.aligned)]]
        self.checked += 1
        self.seen.add((id(item), s.layer, s.o0))
        if s.o0 < 0 or exp != list(s.aligned):
            self.fail(f"{item.label} layer {q.name}: aligned bias of channels {s.o0}..: expected {exp}, got {s.aligned}")


def _pooled_spans(d, h: int, w: int):
    """(rows, columns) of a layer's h x w convolution result that its output
    needs: all of them, or under a pool (POOL, or a fused one) those some
    pool window covers (the floor rule can leave the last ones out, and the
    engine need not compute them). The window is isa.pool_window's."""
    if d.kind != isa.Kind.POOL and not d.pool:
        return range(h), range(w)
    kh, kw, s, (pt, pb, pl, pr) = isa.pool_window(d, h, w)

    def covered(size, k, lo, hi):
        n = isa.conv_out(size, k, s, lo, hi)
        return sorted({p for o in range(n) for p in range(o * s - lo, o * s - lo + k) if 0 <= p < size})

    return covered(h, kh, pt, pb), covered(w, kw, pl, pr)


def _write_back_pixels(item, only=lambda d: True) -> set:
    """(program, layer, first channel of a write-back group, y, x) of every
    accumulator slice the write-back reads in the layers ``only`` accepts:
    every pixel of every channel group of PN the output holds (those some
    pool window covers, under a pool)."""
    pn = item.prog.cfg.pn
    keys = set()
    for i, (d, t) in enumerate(zip(item.descs, item.traces)):
        if not only(d):
            continue
        _, h, w = t.acc.shape
        rows, cols = _pooled_spans(d, h, w)
        c = -(-d.out_c // pn) * pn
        keys.update((id(item), i, o0, y, x) for o0 in range(0, c, pn) for y in rows for x in cols)
    return keys


def _describe_pixel(programs, key) -> str:
    item = next(p for p in programs if id(p) == key[0])
    return f"{item.label} layer {key[1]} channels {key[2]}.. at (y {key[3]}, x {key[4]})"


class ShiftScoreboard(Scoreboard):
    """The shift stage: the accumulator before it, after any residual add
    (against the golden accumulators) and the value after ReLU, the data shift and any clip
    (against the shared rule applied to the observed accumulator). Meant to see every
    pixel of every PE group of every layer that completed (that a pool
    window covers, under a max pool)."""
    unit = "accumulator words"

    def expected(self, item):
        return _write_back_pixels(item)

    def describe(self, key):
        return _describe_pixel(self.programs, key)

    def write(self, datum):
        item, s = datum
        if s.layer >= len(item.traces):
            return
        q = item.prog.layers[s.layer]
        t = item.traces[s.layer]
        cfg = item.prog.cfg
        d = item.descs[s.layer]          # the shift the engine was given
        n = len(s.acc)
        exp_acc = [int(v) for v in t.acc[s.o0:s.o0 + n, s.y, s.x]]
        acc = np.asarray(s.acc, dtype=np.int64)
        if d.relu:
            acc = arith.relu(acc)
        out = arith.shift_round_sat(acc, d.data_shift, cfg.data_bits)
        if d.clip:
            out = arith.clip(out, 0, d.clip_hi)
        exp_out = [int(v) for v in out]
        self.checked += 1
        self.seen.add((id(item), s.layer, s.o0, s.y, s.x))
        if exp_acc != list(s.acc):
            self.fail(f"{item.label} layer {q.name}: accumulators of channels {s.o0}.. at (y {s.y}, x {s.x}): "
                      f"expected {exp_acc}, got {s.acc}")
        if exp_out != list(s.out):
            self.fail(f"{item.label} layer {q.name}: data shift {d.data_shift}"
                      f"{f' and clip at {d.clip_hi}' if d.clip else ''} of channels {s.o0}.. at "
                      f"(y {s.y}, x {s.x}): expected {exp_out}, got {s.out}")


class ResidualScoreboard(Scoreboard):
    """The residual add of the write-back stage, per PE group and pixel of a
    layer with res=1: the accumulator before it (golden ``acc_conv``), the
    residual after alignment (golden ``res_al``, and the shared alignment
    rule applied to the residual as read) and the sum (golden ``acc``, and
    the saturating add of the two observed operands). Transactions arrive
    while the program runs; they are compared once it ended, for the layers
    that completed (an abort, a reset or a bus error leaves a layer's
    pixels partly added). Meant to see every pixel (that a pool window
    covers) of every PE group of every layer with a residual."""
    unit = "residual adds"

    def build_phase(self):
        super().build_phase()
        self.pending = {}            # id(program) -> transactions not compared yet

    def expected(self, item):
        return _write_back_pixels(item, only=lambda d: d.res)

    def describe(self, key):
        return _describe_pixel(self.programs, key)

    def program_ended(self, item):
        super().program_ended(item)
        for tr in self.pending.pop(id(item), []):
            self.compare(tr)

    def write(self, tr):
        if any(p is tr.item for p in self.programs):
            self.compare(tr)
        else:
            self.pending.setdefault(id(tr.item), []).append(tr)

    def compare(self, tr):
        item = tr.item
        if tr.layer >= len(item.traces):
            return
        q = item.prog.layers[tr.layer]
        d = item.descs[tr.layer]
        t = item.traces[tr.layer]
        cfg = item.prog.cfg
        where = f"{item.label} layer {q.name}: channels {tr.o0}.. at (y {tr.y}, x {tr.x})"
        self.checked += 1
        self.seen.add((id(item), tr.layer, tr.o0, tr.y, tr.x))
        if t.res_al is None:
            self.fail(f"{where}: a residual add on a layer without a residual (res={d.res})")
            return
        n = len(tr.sum)
        sl = (slice(tr.o0, tr.o0 + n), tr.y, tr.x)
        exp = {"accumulator before the add": [int(v) for v in t.acc_conv[sl]],
               f"residual aligned (res_shift {d.res_shift})": [int(v) for v in t.res_al[sl]],
               "sum": [int(v) for v in t.acc[sl]]}
        for (what, e), got in zip(exp.items(), (tr.acc, tr.res_al, tr.sum)):
            if e != list(got):
                self.fail(f"{where}: {what}: expected {e}, got {list(got)}")
        # the stage's own rules on what it read: the aligner on the residual
        # word, the saturating adder on the two operands
        al = [int(v) for v in arith.align_to_acc(np.asarray(tr.res, dtype=np.int64), d.res_shift, cfg.acc_bits)]
        if al != list(tr.res_al):
            self.fail(f"{where}: the residual read {list(tr.res)} aligned by res_shift {d.res_shift} is {al}, "
                      f"the stage has {list(tr.res_al)}")
        s = [int(v) for v in arith.add_sat(np.asarray(tr.acc, dtype=np.int64), np.asarray(tr.res_al, dtype=np.int64),
                                           cfg.acc_bits)]
        if s != list(tr.sum):
            self.fail(f"{where}: the saturating add of {list(tr.acc)} and {list(tr.res_al)} is {s}, "
                      f"the stage has {list(tr.sum)}")


class LayerScoreboard(Scoreboard):
    """Each layer's output tensor, element by element. Meant to see every
    layer that completed."""
    unit = "layer outputs"

    def expected(self, item):
        return {(id(item), i) for i in range(len(item.traces))}

    def describe(self, key):
        item = next(p for p in self.programs if id(p) == key[0])
        return f"{item.label} layer {key[1]}"

    def write(self, obs):
        item = obs.item
        q = item.prog.layers[obs.layer]
        exp = item.traces[obs.layer].y
        self.checked += 1
        self.seen.add((id(item), obs.layer))
        diffs, n = _first_diffs(exp, obs.tensor, ("c", "y", "x"))
        if n:
            self.fail(f"{item.label} layer {q.name} ({q.kind.name}): {n} mismatches; first: {'; '.join(diffs)}")


class StatusScoreboard(Scoreboard):
    """The program ends DONE, or with exactly the expected error and layer.
    An abort may land after the end (then DONE is right); an injected bus
    error must stop the layer it hit with the bus's error code. Meant to
    see every program, and at least one."""
    unit = "program ends"

    def expected(self, item):
        return {id(item)}

    def check_phase(self):
        super().check_phase()
        assert self.programs, "StatusScoreboard: no program ran, so nothing was compared"

    def write(self, item):
        status, err, layer, _ = item.result
        self.checked += 1
        self.seen.add(id(item))
        plan = item.fault_plan
        if item.hung:
            self.fail(f"{item.label}: HANG: no end within the watchdog of {item.result[3]} cycles")
            return
        if item.reset_after is not None:
            if (status, err) != (0, 0):
                self.fail(f"{item.label}: after a reset STATUS must read 0 and ERR 0, got 0x{status:x}, 0x{err:x}")
            return
        if plan is not None and plan.fired_layer >= 0:
            code = isa.Err.AXI_READ if plan.kind == "read" else isa.Err.AXI_WRITE
            if not status & ERROR or (err, layer) != (int(code), plan.fired_layer):
                self.fail(f"{item.label}: {plan.kind} error injected at 0x{plan.fired_addr:x} in layer "
                          f"{plan.fired_layer}: expected {code.name} at that layer, got status 0x{status:x}, "
                          f"error {err} at layer {layer}")
            return
        if item.abort_after is not None and status & ERROR:
            # an illegal program may stop on its own error before the abort
            # lands; an abort never lands after that layer
            own = bool(item.expect_err) and (err, layer) == (item.expect_err, item.expect_err_layer)
            late = bool(item.expect_err) and layer > item.expect_err_layer
            if not own and (err != int(isa.Err.ABORTED) or status & DONE or late):
                self.fail(f"{item.label}: abort {item.abort_after} cycles after START: expected ABORTED, "
                          f"got status 0x{status:x}, error {err} at layer {layer}")
            return
        if item.expect_err:
            if not status & ERROR or (err, layer) != (item.expect_err, item.expect_err_layer):
                self.fail(f"{item.label}: expected error {isa.Err(item.expect_err).name} at layer "
                          f"{item.expect_err_layer}, got status 0x{status:x}, error {err} at layer {layer}")
        elif not status & DONE or status & ERROR:
            self.fail(f"{item.label}: status 0x{status:x}, error {err} at layer {layer}")


class MemoryScoreboard(Scoreboard):
    """Nothing outside the output regions of the layers that ran (and that
    stopped) changed (a layer writing a channel slice: its slice only, so a
    stray write into a neighbouring part shows): descriptors, weights, biases, the input and a guard zone
    after the image stay as they were, whatever the end of the program.
    Meant to see every program."""
    unit = "memory snapshots"

    def expected(self, item):
        return {id(item)}

    def write(self, snap):
        item = snap.item
        self.seen.add(id(item))
        prog = item.prog
        status, _, err_layer, _ = item.result
        if item.reset_after is not None or item.hung or not status & ERROR:
            ran = len(prog.layers)
        else:
            ran = min(err_layer + 1, len(prog.layers))
        allowed = []
        for i in range(ran):
            addr, size = layer_out_span(prog, i)
            allowed.append((addr, addr + size))
        before = np.frombuffer(snap.before, dtype=np.uint8)
        after = np.frombuffer(snap.after, dtype=np.uint8)
        mask = np.ones(len(before), dtype=bool)
        for lo, hi in allowed:
            mask[lo:hi] = False
        bad = np.flatnonzero((before != after) & mask)
        self.checked += 1
        if len(bad):
            where = ", ".join(f"0x{a:x} ({_region_of(prog, a)})" for a in bad[:MAX_REPORT])
            self.fail(f"{item.label}: {len(bad)} bytes written outside the output regions; first at {where}")


def _region_of(prog, addr):
    for r in prog.image.regions:
        if r.addr <= addr < r.addr + r.size:
            return r.name
    return "guard zone"


# --------------------------------------------------------------------- env

class UzEnv(uvm_env):
    def build_phase(self):
        self.ctrl = CtrlAgent.create("ctrl", self)
        self.mem = MemAgent.create("mem", self)
        self.gen_mon = GenMonitor.create("gen_mon", self)
        self.bias_mon = BiasMonitor.create("bias_mon", self)
        self.shift_mon = ShiftMonitor.create("shift_mon", self)
        self.res_mon = ResidualMonitor.create("res_mon", self)
        self.layer_mon = LayerMonitor.create("layer_mon", self)
        self.mem_mon = MemoryMonitor.create("mem_mon", self)
        self.fanout = _Fanout("fanout", self)
        self.weights_sb = WeightsScoreboard.create("weights_sb", self)
        self.bias_sb = BiasScoreboard.create("bias_sb", self)
        self.shift_sb = ShiftScoreboard.create("shift_sb", self)
        self.res_sb = ResidualScoreboard.create("res_sb", self)
        self.layer_sb = LayerScoreboard.create("layer_sb", self)
        self.status_sb = StatusScoreboard.create("status_sb", self)
        self.memory_sb = MemoryScoreboard.create("memory_sb", self)
        from .coverage import FunctionalCoverage
        self.cov = FunctionalCoverage.create("cov", self)

    def connect_phase(self):
        drv = self.ctrl.driver
        self.fanout.connect(drv, [self.gen_mon, self.bias_mon, self.shift_mon, self.res_mon, self.layer_mon,
                                  self.mem_mon])
        self.gen_mon.ap.connect(self.weights_sb.analysis_export)
        self.bias_mon.ap.connect(self.bias_sb.analysis_export)
        self.shift_mon.ap.connect(self.shift_sb.analysis_export)
        self.res_mon.ap.connect(self.res_sb.analysis_export)
        self.layer_mon.ap.connect(self.layer_sb.analysis_export)
        drv.finished.connect(self.status_sb.analysis_export)
        self.mem_mon.ap.connect(self.memory_sb.analysis_export)
        drv.finished.connect(self.cov.analysis_export)
        for sb in (self.weights_sb, self.bias_sb, self.shift_sb, self.res_sb, self.layer_sb, self.status_sb,
                   self.memory_sb):
            drv.finished.connect(sb.program_export.analysis_export)
