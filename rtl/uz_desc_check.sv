// Descriptor validation: the error code golden.isa.validate returns, i.e. the
// first failing check of golden.isa.check in the order of the uz_err_e codes,
// ErrNone for a legal descriptor.
//
// Checks with the same code are OR-ed together: check() stops at the first
// one, but any of them gives the same code, so only the order between codes
// matters, and that is the priority chain at the end. Values derived from
// fields an earlier check rejects (conv dims with stride 0, ...) may be
// meaningless; the chain never looks at them then.
//
// The check runs once per layer, so it takes some tens of cycles rather than
// one long combinational cone (it used to set the engine's clock): while
// check_i is high and desc_i holds still, three units run side by side and
// the flags and the code are registered after them.
//   * dims: the padded sizes, then the conv output size by a serial division
//     by the stride (one quotient bit a cycle), then the pool's padded size
//     and its division by the pool stride;
//   * products: the tile's input rows and columns, the three buffer
//     footprints and the pool's cell count on one serial multiplier (two bits
//     of one factor a cycle), saturating just above its bound: for a, b >= 0,
//     a * b > T exactly when min(a, T + 1) * b > T, and a chain of factors
//     stays exact that way, so no product needs more than a few bits above T;
//   * the code mask's population count, one bit a cycle.
// done_o rises with err_o valid and stays until check_i falls; check_i falling
// at any time abandons the check.
module uz_desc_check #(
  parameter int PM           = 16,
  parameter int PN           = 16,
  parameter int DataWidth    = 16,
  parameter int OvsfLen      = 16,
  parameter int AlphaWidth   = 16,
  parameter int AxiDataWidth = 128,
  parameter int InBufElems   = 64 * 1024,
  parameter int WgtBufElems  = 64 * 1024,
  parameter int OutBufElems  = 32 * 1024,
  parameter int MaxK         = 3
) (
  input  logic                            clk_i,
  input  logic                            rst_ni,
  input  logic                            check_i,   // run the check; desc_i holds until it falls
  input  logic [uz_isa_pkg::DescBits-1:0] desc_i,
  output logic                            done_o,    // err_o valid, until check_i falls
  output uz_isa_pkg::uz_err_e             err_o,
  // the geometry found on the way, for the layer: valid from done_o with
  // ErrNone until the next check starts
  output logic [uz_util_pkg::CheckGeomBits-1:0] geom_o   // a uz_check_geom_t
);
  import uz_isa_pkg::*;
  import uz_util_pkg::*;

  // The checks rely on these (golden.config.EngineConfig enforces the same).
  // Spelled out as ASSERT_INIT expands, so the file needs no include path;
  // out of synthesis like every other check (uz_assert.svh).
`ifndef SYNTHESIS
  initial begin : ParamsLegal_A
    if (!(PM >= PN && PM % PN == 0))
      $fatal(1, "uz_desc_check: PM=%0d is not a multiple of PN=%0d", PM, PN);
    if (!(PN > 0 && (PN & (PN - 1)) == 0))
      $fatal(1, "uz_desc_check: PN=%0d is not a power of two", PN);
    if (!(OvsfLen >= 2 && OvsfLen <= 32 && (OvsfLen & (OvsfLen - 1)) == 0))
      $fatal(1, "uz_desc_check: OvsfLen=%0d is not a power of two in 2..32", OvsfLen);
    if (!(AxiDataWidth >= 32 && AxiDataWidth <= 512 && (AxiDataWidth & (AxiDataWidth - 1)) == 0))
      $fatal(1, "uz_desc_check: AxiDataWidth=%0d is not a power of two in 32..512", AxiDataWidth);
    if (!(DataWidth == 8 || DataWidth == 16))
      $fatal(1, "uz_desc_check: DataWidth=%0d is not 8 or 16", DataWidth);
    if (!(AlphaWidth == 8 || AlphaWidth == 16))
      $fatal(1, "uz_desc_check: AlphaWidth=%0d is not 8 or 16", AlphaWidth);
    if (!(InBufElems > 0 && WgtBufElems > 0 && OutBufElems > 0))
      $fatal(1, "uz_desc_check: a buffer size is not positive");
  end
`endif

  // Sizes with padding need 17 bits: a 16-bit size plus two 4-bit pads, or a
  // convolution result plus two pool pads. A convolution result itself can
  // exceed 16 bits (65535 + 2 * 10 - 11 + 1), which only a fused pool brings
  // back to an out_h that fits.
  localparam int DimW = 17;
  // A tile's input rows (tr - 1) * stride + k with a 16-bit tr and a stride
  // below 8 fit 19 bits.
  localparam int HaloW = 19;
  localparam int BusBytes = AxiDataWidth / 8;

  // PM need not be a power of two: sizes divide by it as a product with its
  // reciprocal (uz_util_pkg::div_magic), exact for 17-bit values.
  localparam int PmDivShift = 17 + $clog2(PM);
  localparam logic [63:0] PmDivMagic = uz_util_pkg::div_magic(PM, 17);
  localparam logic [31:0] PnMask  = 32'(PN - 1);
  localparam logic [31:0] BusMask = 32'(BusBytes - 1);
  localparam logic [15:0] PnMask16 = 16'(PN - 1);
  // The largest data value: the clip bound must not exceed it.
  localparam logic [15:0] DataMax = 16'((1 << (DataWidth - 1)) - 1);
  // The generator shifts an OVSF layer may use (golden.isa.gen_shift_range).
  localparam int GenShiftMin = uz_util_pkg::gen_shift_min(AlphaWidth, DataWidth);
  localparam int GenShiftMax = uz_util_pkg::gen_shift_max(OvsfLen);
  // The most cells an average pool divides by (golden.arith.AVG_N_MAX).
  localparam int AvgNMax = 4096;

  // The serial multiplier. (tr - 1) * stride is below 2^19 and must come out
  // exact: its bound is 2^19 - 1. With a <= T + 1 and the product so far
  // p <= T + 1, a step 4 p + 3 a stays below 8 (T + 1): three bits above T.
  localparam int ExactT = (1 << HaloW) - 1;
  localparam int MaxT0  = (InBufElems > OutBufElems) ? InBufElems : OutBufElems;
  localparam int MaxT1  = (WgtBufElems > ExactT) ? WgtBufElems : ExactT;
  localparam int MaxT   = (MaxT0 > MaxT1) ? MaxT0 : MaxT1;
  localparam int PW     = $clog2(MaxT + 1) + 3;
  // The longest factor walked bit by bit (a tile's input columns, 19 bits),
  // rounded up to whole steps of two bits.
  localparam int BW     = 20;

  // v % s != 0 for a pool stride s of 1..3 (s = 0 fails BAD_POOL first).
  // v % 3 as a tree of base-4 digits (4 = 1 mod 3), not a divider.
  function automatic logic [1:0] mod3_add(input logic [1:0] x, input logic [1:0] y);
    logic [2:0] s;
    s = 3'(x) + 3'(y);
    mod3_add = (s >= 3'd3) ? 2'(s - 3'd3) : s[1:0];
  endfunction
  function automatic logic [1:0] mod3_digit(input logic [1:0] d);
    mod3_digit = (d == 2'd3) ? 2'd0 : d;
  endfunction
  function automatic logic [1:0] mod3(input logic [15:0] v);
    logic [1:0] lo, hi;
    lo = mod3_add(mod3_add(mod3_digit(v[1:0]), mod3_digit(v[3:2])),
                  mod3_add(mod3_digit(v[5:4]), mod3_digit(v[7:6])));
    hi = mod3_add(mod3_add(mod3_digit(v[9:8]), mod3_digit(v[11:10])),
                  mod3_add(mod3_digit(v[13:12]), mod3_digit(v[15:14])));
    mod3 = mod3_add(lo, hi);
  endfunction
  function automatic logic not_multiple(input logic [15:0] v, input logic [1:0] s);
    logic r;
    case (s)
      2'd2:    r = (v & 16'd1) != 16'd0;
      2'd3:    r = mod3(v) != 2'd0;
      default: r = 1'b0;
    endcase
    not_multiple = r;
  endfunction

  // The divisor of a stride: 2, 3 and 4 divide; any other stride (only
  // where a check has already failed) divides by 1.
  function automatic logic [2:0] divisor(input logic [2:0] s);
    divisor = (s == 3'd2 || s == 3'd3 || s == 3'd4) ? s : 3'd1;
  endfunction

  // k * k of a 4-bit kernel size, a table.
  function automatic logic [7:0] k_squared(input logic [3:0] k);
    logic [7:0] r;
    case (k)
      4'd0:  r = 8'd0;    4'd1:  r = 8'd1;    4'd2:  r = 8'd4;    4'd3:  r = 8'd9;
      4'd4:  r = 8'd16;   4'd5:  r = 8'd25;   4'd6:  r = 8'd36;   4'd7:  r = 8'd49;
      4'd8:  r = 8'd64;   4'd9:  r = 8'd81;   4'd10: r = 8'd100;  4'd11: r = 8'd121;
      4'd12: r = 8'd144;  4'd13: r = 8'd169;  4'd14: r = 8'd196;  default: r = 8'd225;
    endcase
    k_squared = r;
  endfunction

  // The fields, as plain signals selected outside the always_comb: Icarus 11
  // does not support part-selects of a variable inside always_* blocks.
  // relu, insel, bias, layer_id and the reserved bits have no legality rule
  // and are not read. The shift fields are two's complement.
  /* verilator lint_off UNUSEDSIGNAL */
  logic [DescBits-1:0] desc;
  /* verilator lint_on UNUSEDSIGNAL */
  assign desc = desc_i;
  logic [7:0]    f_magic;
  logic [3:0]    f_kind;
  logic          f_pool;
  logic          f_ovsf;
  logic [3:0]    f_k;
  logic [2:0]    f_stride;
  logic [1:0]    f_pool_k;
  logic [1:0]    f_pool_s;
  logic [1:0]    f_pool_pad;
  logic [3:0]    f_pad_t;
  logic [3:0]    f_pad_b;
  logic [3:0]    f_pad_l;
  logic [3:0]    f_pad_r;
  logic [15:0]   f_in_c;
  logic [15:0]   f_in_h;
  logic [15:0]   f_in_w;
  logic [15:0]   f_out_c;
  logic [15:0]   f_out_h;
  logic [15:0]   f_out_w;
  logic [15:0]   f_tr;
  logic [15:0]   f_tc;
  logic [15:0]   f_ti;
  logic [15:0]   f_to;
  logic [31:0]   f_in_addr;
  logic [31:0]   f_out_addr;
  logic [31:0]   f_wgt_addr;
  logic [31:0]   f_bias_addr;
  logic [7:0]    f_bias_shift;
  logic [7:0]    f_data_shift;
  logic [7:0]    f_gen_shift;
  logic [2:0]    f_log2_l;
  logic [5:0]    f_n_codes;
  logic [31:0]   f_code_mask;
  // Graph fields. Channel slices, the clip, the residual add and every pool
  // run; grouped convolution and the channel shuffle are refused
  // (golden.isa.unsupported_features). pool_incl_pad has no legality rule.
  logic [15:0]   f_groups, f_in_c_off, f_in_c_total, f_out_c_off, f_out_c_total, f_clip_hi;
  logic [7:0]    f_in_shuffle, f_pool_kh, f_pool_kw, f_res_shift;
  logic [31:0]   f_res_addr;
  logic          f_res, f_clip, f_pool_avg, f_pool_global, f_pool_asym;
  logic [3:0]    f_pool_pad_b, f_pool_pad_l, f_pool_pad_r;
  assign f_groups      = desc[DescGroupsLsb +: DescGroupsWidth];
  assign f_in_shuffle  = desc[DescInShuffleLsb +: DescInShuffleWidth];
  assign f_in_c_off    = desc[DescInCOffLsb +: DescInCOffWidth];
  assign f_in_c_total  = desc[DescInCTotalLsb +: DescInCTotalWidth];
  assign f_out_c_off   = desc[DescOutCOffLsb +: DescOutCOffWidth];
  assign f_out_c_total = desc[DescOutCTotalLsb +: DescOutCTotalWidth];
  assign f_res         = desc[DescResLsb +: DescResWidth];
  assign f_res_shift   = desc[DescResShiftLsb +: DescResShiftWidth];
  assign f_res_addr    = desc[DescResAddrLsb +: DescResAddrWidth];
  assign f_clip        = desc[DescClipLsb +: DescClipWidth];
  assign f_clip_hi     = desc[DescClipHiLsb +: DescClipHiWidth];
  assign f_pool_avg    = desc[DescPoolAvgLsb +: DescPoolAvgWidth];
  assign f_pool_global = desc[DescPoolGlobalLsb +: DescPoolGlobalWidth];
  assign f_pool_asym   = desc[DescPoolAsymLsb +: DescPoolAsymWidth];
  assign f_pool_kh     = desc[DescPoolKhLsb +: DescPoolKhWidth];
  assign f_pool_kw     = desc[DescPoolKwLsb +: DescPoolKwWidth];
  assign f_pool_pad_b  = desc[DescPoolPadBLsb +: DescPoolPadBWidth];
  assign f_pool_pad_l  = desc[DescPoolPadLLsb +: DescPoolPadLWidth];
  assign f_pool_pad_r  = desc[DescPoolPadRLsb +: DescPoolPadRWidth];
  assign f_magic      = desc[DescMagicLsb +: DescMagicWidth];
  assign f_kind       = desc[DescKindLsb +: DescKindWidth];
  assign f_pool       = desc[DescPoolLsb +: DescPoolWidth];
  assign f_ovsf       = desc[DescOvsfLsb +: DescOvsfWidth];
  assign f_k          = desc[DescKLsb +: DescKWidth];
  assign f_stride     = desc[DescStrideLsb +: DescStrideWidth];
  assign f_pool_k     = desc[DescPoolKLsb +: DescPoolKWidth];
  assign f_pool_s     = desc[DescPoolSLsb +: DescPoolSWidth];
  assign f_pool_pad   = desc[DescPoolPadLsb +: DescPoolPadWidth];
  assign f_pad_t      = desc[DescPadTLsb +: DescPadTWidth];
  assign f_pad_b      = desc[DescPadBLsb +: DescPadBWidth];
  assign f_pad_l      = desc[DescPadLLsb +: DescPadLWidth];
  assign f_pad_r      = desc[DescPadRLsb +: DescPadRWidth];
  assign f_in_c       = desc[DescInCLsb +: DescInCWidth];
  assign f_in_h       = desc[DescInHLsb +: DescInHWidth];
  assign f_in_w       = desc[DescInWLsb +: DescInWWidth];
  assign f_out_c      = desc[DescOutCLsb +: DescOutCWidth];
  assign f_out_h      = desc[DescOutHLsb +: DescOutHWidth];
  assign f_out_w      = desc[DescOutWLsb +: DescOutWWidth];
  assign f_tr         = desc[DescTrLsb +: DescTrWidth];
  assign f_tc         = desc[DescTcLsb +: DescTcWidth];
  assign f_ti         = desc[DescTiLsb +: DescTiWidth];
  assign f_to         = desc[DescToLsb +: DescToWidth];
  assign f_in_addr    = desc[DescInAddrLsb +: DescInAddrWidth];
  assign f_out_addr   = desc[DescOutAddrLsb +: DescOutAddrWidth];
  assign f_wgt_addr   = desc[DescWgtAddrLsb +: DescWgtAddrWidth];
  assign f_bias_addr  = desc[DescBiasAddrLsb +: DescBiasAddrWidth];
  assign f_bias_shift = desc[DescBiasShiftLsb +: DescBiasShiftWidth];
  assign f_data_shift = desc[DescDataShiftLsb +: DescDataShiftWidth];
  assign f_gen_shift  = desc[DescGenShiftLsb +: DescGenShiftWidth];
  assign f_log2_l     = desc[DescLog2LLsb +: DescLog2LWidth];
  assign f_n_codes    = desc[DescNCodesLsb +: DescNCodesWidth];
  assign f_code_mask  = desc[DescCodeMaskLsb +: DescCodeMaskWidth];


  // ---------------------------------------------- values of the fields alone
  logic is_conv, is_fc, is_pool, pooled, k_ok;
  logic [DimW-1:0] pk_hf, pk_wf;        // the pool window of the fields (not global)
  logic [1:0]      pk_s;
  logic [3:0]      pp_t, pp_b, pp_l, pp_r;
  logic            pp_any;
  logic [DimW-1:0] tr_wide, tc_wide;    // widened to compare with dims
  logic [31:0] in_c_up, out_c_up;       // in_c, out_c rounded up to PN, PM
  logic [31:0] oc_groups, to_groups;    // out_c in oc-groups of PM (rounded up), to's (down)
  logic [31:0] ovsf_l;                  // 2**log2_l
  logic [16:0] in_c_end, out_c_end;     // channel after a slice's last
  logic [15:0] in_c_all, out_c_all;     // channels of the whole tensor (max(total, c))
  logic        dw;                      // depthwise (golden.isa.depthwise)
  logic [7:0]  k2;                      // k * k
  logic        k_dec;                   // a decomposed kernel (6, 9, 12)
  logic [2:0]  k_sub;                   // its sub-windows a side (1 for the others)
  // a decomposed depthwise channel's weights: each sub-window's 9 taps in
  // whole PN words (a signal: Icarus 11 casts no function call)
  localparam logic [15:0] SubTapWords = 16'((9 + PN - 1) / PN * PN);
  logic [15:0] dw_wvec_dec;
  assign dw_wvec_dec = uz_util_pkg::mul_subs(SubTapWords, k_sub);
  logic [31:0] dw_wvec;                 // its weights per channel (golden.isa.wvec_len)

  always_comb begin
    is_conv = f_kind == KindConv;
    is_fc   = f_kind == KindFc;
    is_pool = f_kind == KindPool;
    pooled  = is_pool || (is_conv && f_pool);
    dw      = f_groups > 16'd1 && f_groups == f_in_c && f_groups == f_out_c;
    // A decomposed kernel (6, 9, 12: golden.isa.DECOMPOSED) runs on a 3x3
    // window whatever MaxK, in a dense or depthwise convolution.
    k_dec   = f_k == 4'd6 || f_k == 4'd9 || f_k == 4'd12;
    k_sub   = (f_k == 4'd6) ? 3'd2 : (f_k == 4'd9) ? 3'd3 : (f_k == 4'd12) ? 3'd4 : 3'd1;
    k_ok    = ((f_k == 4'd1 || f_k == 4'd3 || f_k == 4'd5 || f_k == 4'd7 || f_k == 4'd11) &&
               32'(f_k) <= MaxK) ||
              (k_dec && MaxK >= 3 && is_conv && (f_groups <= 16'd1 || dw));
    // the pool window (golden.isa.pool_window); a global pool's is the conv
    // result, known only after its division (pk_h_q, pk_w_q)
    pk_hf = DimW'((f_pool_kh != '0) ? f_pool_kh : 8'(f_pool_k));
    pk_wf = DimW'((f_pool_kw != '0) ? f_pool_kw : 8'(f_pool_k));
    if (f_pool_global) begin
      pk_s = 2'd1;
      pp_t = '0; pp_b = '0; pp_l = '0; pp_r = '0;
    end else begin
      pk_s = f_pool_s;
      pp_t = 4'(f_pool_pad);
      pp_b = f_pool_asym ? f_pool_pad_b : 4'(f_pool_pad);
      pp_l = f_pool_asym ? f_pool_pad_l : 4'(f_pool_pad);
      pp_r = f_pool_asym ? f_pool_pad_r : 4'(f_pool_pad);
    end
    pp_any    = (pp_t | pp_b | pp_l | pp_r) != '0;
    tr_wide   = DimW'(f_tr);
    tc_wide   = DimW'(f_tc);
    in_c_up   = (32'(f_in_c) + PnMask) & ~PnMask;
    oc_groups = uz_util_pkg::div_by_magic(32'(f_out_c) + 32'(PM - 1), PmDivMagic, PmDivShift);
    to_groups = uz_util_pkg::div_by_magic(32'(f_to), PmDivMagic, PmDivShift);
    out_c_up  = oc_groups * PM;
    ovsf_l    = 32'd1 << f_log2_l;
    in_c_end  = 17'(f_in_c_off) + 17'(f_in_c);
    out_c_end = 17'(f_out_c_off) + 17'(f_out_c);
    in_c_all  = (f_in_c_total > f_in_c) ? f_in_c_total : f_in_c;
    out_c_all = (f_out_c_total > f_out_c) ? f_out_c_total : f_out_c;
    k2        = k_squared(f_k);
    // a decomposed kernel's sub-windows each packed into whole words
    dw_wvec   = !k_dec ? (32'(k2) + PnMask) & ~PnMask : 32'(dw_wvec_dec);
  end

  // ------------------------------------------------------------ sequencing
  typedef enum logic [2:0] {CkIdle, CkRun, CkFlags, CkCode, CkDone} ck_state_e;
  typedef enum logic [3:0] {
    DmIdle, DmPad, DmConvLoad, DmConvDiv, DmConvEnd, DmPoolPad, DmPoolLoad, DmPoolDiv, DmPoolEnd, DmDone
  } dm_state_e;
  typedef enum logic [2:0] {MuIdle, MuLoad, MuPrep, MuRun, MuDone} mu_state_e;
  // the products, in order; the pool's cells last (a global window is the
  // conv result, from the dims unit)
  localparam logic [3:0] MpIh = 4'd0, MpIw = 4'd1, MpIn1 = 4'd2, MpIn = 4'd3, MpOut1 = 4'd4, MpOut = 4'd5,
                         MpWgt1 = 4'd6, MpWgt = 4'd7, MpCells = 4'd8;

  ck_state_e ck_q, ck_d;
  dm_state_e dm_q, dm_d;
  mu_state_e mu_q, mu_d;
  logic      start;                       // the first cycle of a check
  logic      pop_done;
  logic [4:0] dcnt_q;                     // division steps left - 1
  logic [3:0] mp_q;                       // the product under way
  logic [3:0] mcnt_q;                     // multiplication steps left - 1

  assign start = check_i && ck_q == CkIdle;

  always_comb begin
    ck_d = ck_q;
    unique case (ck_q)
      CkIdle:  ck_d = CkRun;
      CkRun:   if (dm_q == DmDone && mu_q == MuDone && pop_done) ck_d = CkFlags;
      CkFlags: ck_d = CkCode;
      CkCode:  ck_d = CkDone;
      CkDone:  ck_d = CkDone;
      /* verilator coverage_off */
      default: ck_d = CkIdle;
      /* verilator coverage_on */
    endcase
    if (!check_i) ck_d = CkIdle;
  end

  always_comb begin
    dm_d = dm_q;
    unique case (dm_q)
      DmIdle:     if (start) dm_d = DmPad;
      DmPad:      dm_d = DmConvLoad;
      DmConvLoad: dm_d = DmConvDiv;
      DmConvDiv:  if (dcnt_q == '0) dm_d = DmConvEnd;
      DmConvEnd:  dm_d = DmPoolPad;
      DmPoolPad:  dm_d = DmPoolLoad;
      DmPoolLoad: dm_d = DmPoolDiv;
      DmPoolDiv:  if (dcnt_q == '0) dm_d = DmPoolEnd;
      DmPoolEnd:  dm_d = DmDone;
      DmDone:     dm_d = DmDone;
      /* verilator coverage_off */
      default:    dm_d = DmIdle;
      /* verilator coverage_on */
    endcase
    if (!check_i) dm_d = DmIdle;
  end

  always_comb begin
    mu_d = mu_q;
    unique case (mu_q)
      MuIdle: if (start) mu_d = MuLoad;
      // the pool's cells wait for its window
      MuLoad: if (mp_q != MpCells || dm_q == DmDone) mu_d = MuPrep;
      MuPrep: mu_d = MuRun;
      MuRun:
        if (mcnt_q == '0) begin
          if (mp_q == MpCells) mu_d = MuDone;
          else                 mu_d = MuLoad;
        end
      MuDone: mu_d = MuDone;
      /* verilator coverage_off */
      default: mu_d = MuIdle;
      /* verilator coverage_on */
    endcase
    if (!check_i) mu_d = MuIdle;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      ck_q <= CkIdle;
      dm_q <= DmIdle;
      mu_q <= MuIdle;
    end else begin
      ck_q <= ck_d;
      dm_q <= dm_d;
      mu_q <= mu_d;
    end
  end

  // ------------------------------------------------------------------ dims
  // golden.isa.conv_dims, pool_out: ch = (pad_h - k) / stride + 1,
  // eh = (ph - pk_h) / pk_s + 1. The division is restoring, one quotient bit
  // a cycle from the top (uz_util_pkg::div_step), for h and w side by side:
  // the dividend shifts out of dq at the top as the quotient shifts in at
  // the bottom, the remainder (below the divisor, at most 3) in rm.
  logic [DimW-1:0] pad_h_q, pad_w_q;      // padded input height, width
  logic [DimW-1:0] ch_q, cw_q;            // convolution result (POOL: its input)
  logic [DimW-1:0] pk_h_q, pk_w_q;        // the pool window (golden.isa.pool_window)
  logic [DimW-1:0] ph_q, pw_q;            // pool input plus its padding
  logic [DimW-1:0] eh_q, ew_q;            // expected out_h, out_w
  logic [DimW-1:0] dq_h_q, dq_w_q;
  logic [1:0]      rm_h_q, rm_w_q;
  logic [2:0]      dv_q;                  // the divisor, 1..4

  // one step of each lane (uz_util_pkg::div_step), on the top bit of dq
  logic       qb_h, qb_w;
  logic [1:0] rn_h, rn_w;
  assign {qb_h, rn_h} = div_step(rm_h_q, dq_h_q[DimW-1], dv_q);
  assign {qb_w, rn_w} = div_step(rm_w_q, dq_w_q[DimW-1], dv_q);

  // datapath: each register is read only in the states after its write
  always_ff @(posedge clk_i) begin
    unique case (dm_q)
      DmPad: begin
        pad_h_q <= DimW'(f_in_h) + DimW'(f_pad_t) + DimW'(f_pad_b);
        pad_w_q <= DimW'(f_in_w) + DimW'(f_pad_l) + DimW'(f_pad_r);
      end
      DmConvLoad: begin
        dq_h_q <= pad_h_q - DimW'(f_k);
        dq_w_q <= pad_w_q - DimW'(f_k);
        rm_h_q <= '0;
        rm_w_q <= '0;
        dv_q   <= divisor(f_stride);
        dcnt_q <= 5'(DimW - 1);
      end
      DmConvDiv, DmPoolDiv: begin
        {rm_h_q, dq_h_q} <= {rn_h, dq_h_q[DimW-2:0], qb_h};
        {rm_w_q, dq_w_q} <= {rn_w, dq_w_q[DimW-2:0], qb_w};
        dcnt_q <= dcnt_q - 5'd1;
      end
      DmConvEnd: begin
        ch_q <= is_pool ? DimW'(f_in_h) : dq_h_q + DimW'(1);
        cw_q <= is_pool ? DimW'(f_in_w) : dq_w_q + DimW'(1);
      end
      DmPoolPad: begin
        pk_h_q <= f_pool_global ? ch_q : pk_hf;
        pk_w_q <= f_pool_global ? cw_q : pk_wf;
        ph_q   <= ch_q + DimW'(pp_t) + DimW'(pp_b);
        pw_q   <= cw_q + DimW'(pp_l) + DimW'(pp_r);
      end
      DmPoolLoad: begin
        dq_h_q <= ph_q - pk_h_q;
        dq_w_q <= pw_q - pk_w_q;
        rm_h_q <= '0;
        rm_w_q <= '0;
        dv_q   <= divisor({1'b0, pk_s});
        dcnt_q <= 5'(DimW - 1);
      end
      DmPoolEnd: begin
        eh_q <= pooled ? dq_h_q + DimW'(1) : ch_q;
        ew_q <= pooled ? dq_w_q + DimW'(1) : cw_q;
      end
      default: ;
    endcase
  end

  // -------------------------------------------------------------- products
  // p = min(a * b, T + 1) with a clipped to T + 1 at the load, b walked two
  // bits a step from the top: p = min(4 p + digit * a, T + 1). The last
  // step's saturation is the product's "above T". A chained product takes
  // the last one's p as its a (already clipped to the same bound).
  localparam logic [PW-1:0] ExactT1 = PW'(ExactT + 1);
  localparam logic [PW-1:0] InT1    = PW'(InBufElems + 1);
  localparam logic [PW-1:0] OutT1   = PW'(OutBufElems + 1);
  localparam logic [PW-1:0] WgtT1   = PW'(WgtBufElems + 1);
  localparam logic [PW-1:0] AvgT1   = PW'(AvgNMax + 1);

  logic [PW-1:0]    p_q, a_q, a3_q, t1_q; // product so far, a, 3 a, T + 1
  logic [BW-1:0]    b_q;                  // b, its next digit at the top
  logic [HaloW-1:0] ihp_q, iwp_q;         // (tr - 1) * stride, (tc - 1) * stride
  logic             in_large_q, out_large_q, wgt_large_q, pk_large_q;
  logic [HaloW-1:0] ih, iw;               // input rows, cols one tile reads
  logic [31:0]      mu_a;                 // this product's a, b (left-aligned), T + 1 and steps
  logic [BW-1:0]    mu_b;
  logic [PW-1:0]    mu_t1;
  logic [3:0]       mu_steps;
  logic [PW-1:0]    mu_add, mu_sum, mu_p;
  logic             mu_sat;

  always_comb begin
    // golden.isa.tile_footprint, in_tile_dims
    ih = is_pool ? HaloW'(f_tr) : ihp_q + HaloW'(f_k);
    iw = is_pool ? HaloW'(f_tc) : iwp_q + HaloW'(f_k);
    mu_a = '0;
    mu_b = '0;
    mu_t1 = ExactT1;
    mu_steps = '0;
    unique case (mp_q)
      MpIh:   begin mu_a = 32'(f_tr - 16'd1); mu_b = BW'(f_stride) << 16; mu_steps = 4'd1; end
      MpIw:   begin mu_a = 32'(f_tc - 16'd1); mu_b = BW'(f_stride) << 16; mu_steps = 4'd1; end
      // in_fp = ti * ih * iw
      MpIn1:  begin mu_a = 32'(ih);  mu_b = BW'(f_ti) << 4; mu_t1 = InT1; mu_steps = 4'd7; end
      MpIn:   begin mu_a = 32'(p_q); mu_b = BW'(iw);        mu_t1 = InT1; mu_steps = 4'd9; end
      // out_fp = to * tr * tc
      MpOut1: begin mu_a = 32'(f_to); mu_b = BW'(f_tr) << 4; mu_t1 = OutT1; mu_steps = 4'd7; end
      MpOut:  begin mu_a = 32'(p_q);  mu_b = BW'(f_tc) << 4; mu_t1 = OutT1; mu_steps = 4'd7; end
      // wgt_fp = to * ti * k * k, depthwise to * dw_wvec
      MpWgt1: begin mu_a = dw ? dw_wvec : 32'(f_ti); mu_b = BW'(f_to) << 4; mu_t1 = WgtT1; mu_steps = 4'd7; end
      MpWgt:  begin mu_a = 32'(p_q); mu_b = (dw ? BW'(1) : BW'(k2)) << 12; mu_t1 = WgtT1; mu_steps = 4'd3; end
      // the cells an average pool divides by
      MpCells: begin mu_a = 32'(pk_h_q); mu_b = BW'(pk_w_q) << 2; mu_t1 = AvgT1; mu_steps = 4'd8; end
      default: ;
    endcase
    unique case (b_q[BW-1 -: 2])
      2'd0:    mu_add = '0;
      2'd1:    mu_add = a_q;
      2'd2:    mu_add = {a_q[PW-2:0], 1'b0};
      default: mu_add = a3_q;
    endcase
    mu_sum = {p_q[PW-3:0], 2'b00} + mu_add;
    mu_sat = mu_sum >= t1_q;
    mu_p   = mu_sat ? t1_q : mu_sum;
  end

  always_ff @(posedge clk_i) begin
    if (mu_q == MuIdle && start) mp_q <= MpIh;
    unique case (mu_q)
      MuLoad: begin
        a_q    <= (mu_a >= 32'(mu_t1)) ? mu_t1 : PW'(mu_a);
        b_q    <= mu_b;
        t1_q   <= mu_t1;
        mcnt_q <= mu_steps;
      end
      MuPrep: begin
        a3_q <= a_q + {a_q[PW-2:0], 1'b0};
        p_q  <= '0;
      end
      MuRun: begin
        p_q    <= mu_p;
        b_q    <= {b_q[BW-3:0], 2'b00};
        mcnt_q <= mcnt_q - 4'd1;
        if (mcnt_q == '0) begin
          mp_q <= mp_q + 4'd1;
          unique case (mp_q)
            MpIh:    ihp_q       <= HaloW'(mu_p);
            MpIw:    iwp_q       <= HaloW'(mu_p);
            MpIn:    in_large_q  <= mu_sat;
            MpOut:   out_large_q <= mu_sat;
            MpWgt:   wgt_large_q <= mu_sat;
            MpCells: pk_large_q  <= mu_sat;
            default: ;
          endcase
        end
      end
      default: ;
    endcase
  end

  // ------------------------------------------------ codes in the code mask
  logic [31:0] pop_q;
  logic [5:0]  n_ones_q;
  assign pop_done = pop_q == '0;
  always_ff @(posedge clk_i) begin
    if (start) begin
      pop_q    <= f_code_mask;
      n_ones_q <= '0;
    end else if (!pop_done) begin
      pop_q    <= pop_q >> 1;
      n_ones_q <= n_ones_q + 6'(pop_q[0]);
    end
  end

  // ---------------------------------------------------------------- checks
  // One flag per error code, the checks of golden.isa.check, from the fields
  // and the registered results above.
  logic c_magic, c_kind, c_unsup, c_zero, c_kernel, c_stride, c_pad, c_ktl, c_pool;
  logic c_shape, c_tile, c_shift, c_codes, c_align, c_large;
  always_comb begin
    c_magic  = f_magic != DescMagic;
    c_kind   = !(is_conv || is_fc || is_pool);
    // of the grouped convolutions only depthwise runs (the compiler lowers
    // the others to dense channel-slice layers)
    c_unsup  = (f_groups > 16'd1 && !dw) || f_in_shuffle > 8'd1;
    c_zero   = f_in_c == '0 || f_in_h == '0 || f_in_w == '0 ||
               f_out_c == '0 || f_out_h == '0 || f_out_w == '0;
    // the loader counts a decomposed layer's weights as cin_pad * (k/3)^2
    // channels in 16 bits: cin_pad at most 65535 / (k/3)^2
    c_kernel = !is_pool && (!k_ok || (is_fc && f_k != 4'd1) ||
                            (f_k == 4'd6 && in_c_up > 32'd16383) || (f_k == 4'd9 && in_c_up > 32'd7281) ||
                            (f_k == 4'd12 && in_c_up > 32'd4095));
    c_stride = !is_pool && (f_stride == 3'd0 || f_stride > 3'd4 || (is_fc && f_stride != 3'd1));
    c_pad    = !is_pool && (f_pad_t >= f_k || f_pad_b >= f_k || f_pad_l >= f_k || f_pad_r >= f_k);
    c_ktl    = !is_pool && (DimW'(f_k) > pad_h_q || DimW'(f_k) > pad_w_q);
    c_pool   = (is_fc && f_pool) ||
               (pooled && !f_pool_global &&
                ((f_pool_kh == '0 && f_pool_kw == '0 && !(f_pool_k == 2'd2 || f_pool_k == 2'd3)) ||
                 pk_h_q == '0 || pk_w_q == '0 || f_pool_s == 2'd0 ||
                 DimW'(pp_t) >= pk_h_q || DimW'(pp_b) >= pk_h_q || DimW'(pp_l) >= pk_w_q ||
                 DimW'(pp_r) >= pk_w_q || pk_h_q > ph_q || pk_w_q > pw_q)) ||
               // only a POOL layer averages, over at most AVG_N_MAX cells
               (pooled && f_pool_avg && (!is_pool || pk_large_q));
    c_shape  = (is_pool && f_out_c != f_in_c) ||
               (dw && !is_conv) ||
               (is_pool && f_res) ||
               // a channel slice inside its tensor
               in_c_end > 17'(in_c_all) || out_c_end > 17'(out_c_all) ||
               DimW'(f_out_h) != eh_q || DimW'(f_out_w) != ew_q ||
               (is_fc && (f_in_h != 16'd1 || f_in_w != 16'd1));
    c_tile   = f_tr == '0 || f_tc == '0 || f_ti == '0 || f_to == '0 ||
               tr_wide > ch_q || tc_wide > cw_q ||
               // A tiled pool must not straddle tiles.
               (pooled && (tr_wide < ch_q || tc_wide < cw_q) &&
                (pk_h_q != DimW'(f_pool_s) || pk_w_q != DimW'(f_pool_s) || pp_any || f_pool_global ||
                 (tr_wide < ch_q && not_multiple(f_tr, f_pool_s)) ||
                 (tc_wide < cw_q && not_multiple(f_tc, f_pool_s)))) ||
               (dw ? f_ti != f_to : (!is_pool && 32'(f_ti) > in_c_up)) || (32'(f_ti) & PnMask) != '0 ||
               (is_pool && f_to != f_ti) ||
               // every kind: the compute runs oc-groups of PM (a POOL's too)
               to_groups * PM != 32'(f_to) || 32'(f_to) > out_c_up;
    c_shift  = 32'($signed(f_bias_shift)) < ShiftMin || 32'($signed(f_bias_shift)) > ShiftMax ||
               32'($signed(f_data_shift)) < ShiftMin || 32'($signed(f_data_shift)) > ShiftMax ||
               32'($signed(f_gen_shift)) < ShiftMin || 32'($signed(f_gen_shift)) > ShiftMax ||
               (f_res && (32'($signed(f_res_shift)) < ShiftMin || 32'($signed(f_res_shift)) > ShiftMax)) ||
               (f_clip && f_clip_hi > DataMax) ||
               (is_pool && f_data_shift != '0) ||
               // the generator shifts over this range only (uz_ovsf_gen)
               (f_ovsf && (32'($signed(f_gen_shift)) < GenShiftMin || 32'($signed(f_gen_shift)) > GenShiftMax));
    // Once 2**log2_l equals OvsfLen, check() measures the mask and the code
    // count against OvsfLen, so the constant serves for both.
    c_codes  = f_ovsf && (is_pool || ovsf_l != 32'(OvsfLen) ||
                          (f_code_mask >> OvsfLen) != '0 ||
                          f_n_codes == '0 || 32'(f_n_codes) > 32'(OvsfLen) ||
                          n_ones_q != f_n_codes);
    c_align  = ((f_in_addr | f_out_addr | f_wgt_addr | f_bias_addr) & BusMask) != '0 ||
               (f_res && (f_res_addr & BusMask) != '0) ||
               ((f_in_c_off | f_out_c_off) & PnMask16) != '0;
    // the layer counts convolution rows and columns in 16 bits
    c_large  = in_large_q || out_large_q || (!is_pool && wgt_large_q) || (ch_q >> 16) != '0 ||
               (cw_q >> 16) != '0;
  end

  // The flags registered, then the first failing one.
  logic [15:1] flags_q;                   // bit i: the check of code i fails
  uz_err_e     err_q;
  always_ff @(posedge clk_i) begin
    if (ck_q == CkFlags)
      flags_q <= {c_large, c_align, c_codes, c_shift, c_tile, c_shape, c_pool, c_ktl, c_pad, c_stride,
                  c_kernel, c_zero, c_unsup, c_kind, c_magic};
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      err_q <= ErrNone;
    end else if (ck_q == CkCode) begin
      if      (flags_q[1])  err_q <= ErrBadMagic;
      else if (flags_q[2])  err_q <= ErrBadKind;
      else if (flags_q[3])  err_q <= ErrUnsupported;
      else if (flags_q[4])  err_q <= ErrZeroDim;
      else if (flags_q[5])  err_q <= ErrBadKernel;
      else if (flags_q[6])  err_q <= ErrBadStride;
      else if (flags_q[7])  err_q <= ErrBadPad;
      else if (flags_q[8])  err_q <= ErrKernelTooLarge;
      else if (flags_q[9])  err_q <= ErrBadPool;
      else if (flags_q[10]) err_q <= ErrShapeMismatch;
      else if (flags_q[11]) err_q <= ErrBadTile;
      else if (flags_q[12]) err_q <= ErrBadShift;
      else if (flags_q[13]) err_q <= ErrBadCodes;
      else if (flags_q[14]) err_q <= ErrBadAlign;
      else if (flags_q[15]) err_q <= ErrTooLarge;
      else                  err_q <= ErrNone;
    end
  end

  assign done_o = ck_q == CkDone;
  assign err_o  = err_q;
  // A legal descriptor's sizes fit 16 bits (c_large; a tile's input rows and
  // columns are below its buffer's size).
  // (a concatenation in member order: Icarus 11 takes no named assignment
  // pattern)
  // Registered as the flags are (valid from CkCode, before done_o): the
  // engine's consumers then start from a register, not from this block's
  // sums (on ECP5 the check's registers through them to the loader and
  // compute were the longest paths).
  logic [CheckGeomBits-1:0] geom_q, geom_now;
  assign geom_now = {16'(ch_q), 16'(cw_q), 16'(ih), 16'(iw), 16'(out_c_up)};
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni)               geom_q <= '0;
    else if (ck_q == CkFlags)  geom_q <= geom_now;
  end
  assign geom_o = geom_q;

  // ------------------------------------------------------------ assertions
  `include "uz_assert.svh"
`ifndef UZ_NO_ASSERT
  logic                sh_check_q;
  logic [DescBits-1:0] sh_desc_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sh_check_q <= 1'b0;
      sh_desc_q  <= '0;
    end else begin
      sh_check_q <= check_i;
      sh_desc_q  <= desc_i;
    end
  end
  // the descriptor holds while it is checked
  `ASSERT(DescHeldWhileChecked_A, !(sh_check_q && check_i) || desc_i == sh_desc_q, clk_i, rst_ni)
  // a check starts with every unit idle
  `ASSERT(UnitsIdleAtStart_A, !start || (dm_q == DmIdle && mu_q == MuIdle), clk_i, rst_ni)
  // the code mask is counted before the flags are taken
  `ASSERT(PopDoneBeforeFlags_A, ck_q != CkFlags || pop_done, clk_i, rst_ni)
  // the sizes handed on are those of the descriptor being checked
  `ASSERT(GeomSettledAtDone_A, !done_o || geom_q == geom_now, clk_i, rst_ni)
  `ASSERT_KNOWN(DoneKnown_A, done_o, clk_i, rst_ni)
  `ASSERT_KNOWN(ErrKnownWhenDone_A, done_o ? err_o : ErrNone, clk_i, rst_ni)
`endif
endmodule
