// Helpers shared by several blocks of the engine: the one definition of the
// engine's stride arithmetic, of division by a constant and of the
// shift-amount decode, and the layer geometry the blocks pass each other.
//
// No bit or part selects of a function's arguments or locals: Icarus 11 puts
// a selected function variable into the sensitivity of every always_comb
// that calls the function, so two such processes retrigger each other
// forever at one simulation time. Shifts and masks instead.
package uz_util_pkg;

  // v * st for a stride st below 8: shifts and adds, no multiplier. Callers
  // narrow the result to the width they need.
  function automatic logic [31:0] mul_stride(logic [31:0] v, logic [2:0] st);
    mul_stride = (((st & 3'd1) != '0) ? v : 32'd0) + (((st & 3'd2) != '0) ? v << 1 : 32'd0) +
                 (((st & 3'd4) != '0) ? v << 2 : 32'd0);
  endfunction

  // c * ksub^2 for the sub-windows per side of a decomposed kernel (1..4:
  // k = 6, 9, 12 run as (k/3)^2 sub-windows of 3x3, golden.isa.DECOMPOSED):
  // to the weights and the ci-group loop, a decomposed layer has ksub^2
  // times the channels of a 3x3 one. Shifts and adds.
  function automatic logic [15:0] mul_subs(logic [15:0] c, logic [2:0] ksub);
    case (ksub)
      3'd2:    mul_subs = c << 2;
      3'd3:    mul_subs = (c << 3) + c;
      3'd4:    mul_subs = c << 4;
      default: mul_subs = c;
    endcase
  endfunction

  // One step of a restoring division by a stride d of 1..4, one quotient bit
  // from the top: the remainder so far rm (below d) takes the dividend's
  // next bit b; returns {quotient bit, new remainder}. Every division by a
  // stride in the engine is this step, one per cycle (uz_desc_check: the
  // convolution and pool output sizes; uz_post: a tile's pooled rows and
  // columns), so none is a combinational chain on a clocked path.
  function automatic logic [2:0] div_step(logic [1:0] rm, logic b, logic [2:0] d);
    logic [2:0] x;
    logic       ge;
    x  = {rm, b};
    ge = x >= d;
    div_step = {ge, ge ? 2'(x - d) : 2'(x)};
  endfunction

  // Division by a constant d that need not be a power of two (PM, PM / PN)
  // of a value below 2^n, as a product with the rounded-up reciprocal
  // m = ceil(2^s / d), s = n + ceil(log2 d): exact for every such value
  // (Granlund and Montgomery). Callers keep m and s as localparams; a power
  // of two d gives m = 2^n, and the product is a shift.
  function automatic logic [63:0] div_magic(int unsigned d, int unsigned n);
    div_magic = ((64'd1 << (n + $clog2(d))) + 64'(d) - 64'd1) / 64'(d);
  endfunction
  function automatic logic [31:0] div_by_magic(logic [31:0] x, logic [63:0] m, int unsigned s);
    div_by_magic = 32'((64'(x) * m) >> s);
  endfunction

  // The amount uz_shift_round_sat shifts z = x * 2^out_width right by, for
  // a two's complement right-shift amount `shift` (negative: left):
  //   t = clamp(shift + out_width, 0, z_width),  z_width = in + out width.
  // Amounts past either end round every value to 0 or saturate every
  // non-zero one, so the clamp changes nothing. uz_shift_round_sat decodes
  // with it when not PreDecoded; post and compute decode their layer
  // shifts with it once into a register and pass t (PreDecoded).
  function automatic logic [31:0] shift_decode(logic signed [31:0] shift, int out_width,
                                               int z_width);
    logic signed [31:0] t;
    t = shift + 32'(out_width);
    if (t < 0)                      shift_decode = '0;
    else if (t > 32'(z_width))      shift_decode = 32'(z_width);
    else                            shift_decode = t;
  endfunction

  // The generator shifts (gen_shift of an OVSF layer) the engine covers,
  // gen_shift_min(AlphaWidth, DataWidth) .. gen_shift_max(OvsfLen); others
  // are BAD_SHIFT (uz_desc_check), so uz_ovsf_gen's shifter spans only these.
  // golden.isa.gen_shift_range states the rule and why the compiler never
  // needs more.
  function automatic int gen_shift_min(int alpha_width, int data_width);
    gen_shift_min = ((alpha_width < data_width) ? alpha_width - data_width : 0) - 2;
  endfunction
  function automatic int gen_shift_max(int ovsf_len);
    gen_shift_max = $clog2(ovsf_len);
  endfunction

  // The channels of an output tile (from o0, no of them, oc-groups of PM)
  // that the output tensor holds, cout_wr = out_c rounded up to PN: the last
  // tile may pass them (PM > PN). The write-back writes these and the
  // loader reads the residual's (golden.perf.layer_cycles: the same rule).
  function automatic logic [15:0] chans_held(logic [15:0] o0, logic [15:0] no, logic [15:0] cout_wr);
    chans_held = ({1'b0, o0} + {1'b0, no} > {1'b0, cout_wr}) ? cout_wr - o0 : no;
  endfunction

  // The geometry uz_desc_check works out while it checks a descriptor,
  // which the layer then runs on (valid from the check's done until the
  // next check starts, i.e. for the whole layer).
  typedef struct packed {
    logic [15:0] conv_h;    // convolution output rows (POOL: its input's)
    logic [15:0] conv_w;    // convolution output columns
    logic [15:0] in_rows;   // input rows one tile reads, (tr - 1) * stride + k (POOL: tr)
    logic [15:0] in_cols;   // input columns one tile reads
    logic [15:0] cout_pad;  // out_c rounded up to PM (PM need not be a power of two)
  } uz_check_geom_t;
  // Ports carry it as a plain vector (Icarus 11 fails to elaborate a port of
  // a package's struct type).
  localparam int CheckGeomBits = $bits(uz_check_geom_t);

  // The layer's geometry as the loader, the compute and the write-back run
  // it: uz_layer decodes it once from the descriptor and the check's sizes
  // and passes it whole (each block reads the part it needs). Stable while
  // the layer runs, but for trtc, a product uz_layer forms after start (valid
  // from its consts_valid: no tile is planned before). Members stay unsigned
  // (Icarus 11 loses a signed member's sign): callers sign-extend at the use.
  typedef struct packed {
    logic        pool_kind;  // a POOL layer: runs as a 1x1 convolution of stride 1 without padding
    logic        pool_en;    // a pool follows: CONV with fused pool, or POOL
    logic        dw;         // depthwise CONV (golden.isa.depthwise)
    logic        ovsf;       // weights generated from OVSF coefficients (else raw)
    logic        insel;      // input selection: only a group's real channels fill the lanes
    logic [3:0]  k;          // the window's kernel size: k, 3 for a decomposed k (POOL: 1)
    logic [6:0]  k2;         // k * k of the window
    logic [2:0]  ksub;       // sub-windows per side: k / 3 for a decomposed k (6, 9, 12), else 1
    logic [6:0]  wsteps;     // weight words per (channel, ci-group): k2, or ceil(k2/PN) for dw
    logic [2:0]  stride;     // (POOL: 1)
    logic [3:0]  pad_t;      // padding top and left (POOL: 0)
    logic [3:0]  pad_l;
    logic [15:0] in_c;       // input channels, rows, columns
    logic [15:0] in_h;
    logic [15:0] in_w;
    logic [15:0] cin_pad;    // in_c rounded up to PN
    logic [15:0] cout_pad;   // out_c rounded up to PM: the channels computed
    logic [15:0] cout_wr;    // out_c rounded up to PN: the channels the output (and residual) holds
    logic [15:0] conv_h;     // convolution output rows and columns (uz_check_geom_t)
    logic [15:0] conv_w;
    logic [15:0] out_h;      // output rows and columns as written, after any fused pool
    logic [15:0] out_w;
    logic [15:0] to;         // tile: output channels, input channels, rows, columns
    logic [15:0] ti;
    logic [15:0] tr;
    logic [15:0] tc;
    logic [15:0] ih_t;       // input tile rows and columns with the halo (uz_check_geom_t)
    logic [15:0] iw_t;
    logic [31:0] trtc;       // tr * tc (from uz_layer's consts_valid)
    logic [15:0] pool_kh;    // the pool window (golden.isa.pool_window; a global pool's is the plane)
    logic [15:0] pool_kw;
    logic [1:0]  pool_s;
    logic [3:0]  pool_pt;    // pool padding top and left (cells past the plane's far edges never count)
    logic [3:0]  pool_pl;
  } uz_layer_geom_t;
  // A plain vector on ports, as uz_check_geom_t.
  localparam int LayerGeomBits = $bits(uz_layer_geom_t);

endpackage : uz_util_pkg
