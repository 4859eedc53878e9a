// Descriptor validation: the error code golden.isa.validate returns, i.e. the
// first failing check of golden.isa.check in the order of the uz_err_e codes,
// ErrNone for a legal descriptor. Purely combinational.
//
// Checks with the same code are OR-ed together: check() stops at the first
// one, but any of them gives the same code, so only the order between codes
// matters, and that is the priority chain at the end. Values derived from
// fields an earlier check rejects (conv dims with stride 0, ...) may be
// meaningless; the chain never looks at them then.
module uz_desc_check #(
  parameter int PM           = 16,
  parameter int PN           = 16,
  parameter int DataWidth    = 16,
  parameter int OvsfLen      = 16,
  parameter int AxiDataWidth = 128,
  parameter int InBufElems   = 64 * 1024,
  parameter int WgtBufElems  = 64 * 1024,
  parameter int OutBufElems  = 32 * 1024,
  parameter int MaxK         = 11
) (
  input  logic [uz_isa_pkg::DescBits-1:0] desc_i,
  output uz_isa_pkg::uz_err_e             err_o
);
  import uz_isa_pkg::*;
  import uz_util_pkg::*;

  // The checks rely on these (golden.config.EngineConfig enforces the same).
  // Spelled out as ASSERT_INIT expands, so the file needs no include path;
  // out of synthesis like every other check (uz_assert.svh).
`ifndef SYNTHESIS
  initial begin : ParamsLegal_A
    if (!(PM > 0 && (PM & (PM - 1)) == 0))
      $fatal(1, "uz_desc_check: PM=%0d is not a power of two", PM);
    if (!(PN > 0 && (PN & (PN - 1)) == 0))
      $fatal(1, "uz_desc_check: PN=%0d is not a power of two", PN);
    if (!(OvsfLen >= 2 && OvsfLen <= 32 && (OvsfLen & (OvsfLen - 1)) == 0))
      $fatal(1, "uz_desc_check: OvsfLen=%0d is not a power of two in 2..32", OvsfLen);
    if (!(AxiDataWidth >= 32 && AxiDataWidth <= 512 && (AxiDataWidth & (AxiDataWidth - 1)) == 0))
      $fatal(1, "uz_desc_check: AxiDataWidth=%0d is not a power of two in 32..512", AxiDataWidth);
    if (!(DataWidth == 8 || DataWidth == 16))
      $fatal(1, "uz_desc_check: DataWidth=%0d is not 8 or 16", DataWidth);
    if (!(InBufElems > 0 && WgtBufElems > 0 && OutBufElems > 0))
      $fatal(1, "uz_desc_check: a buffer size is not positive");
  end
`endif

  // Sizes with padding need 17 bits: a 16-bit size plus two 4-bit pads, or a
  // convolution result plus two pool pads. A convolution result itself can
  // exceed 16 bits (65535 + 2 * 10 - 11 + 1), which only a fused pool brings
  // back to an out_h that fits.
  localparam int DimW = 17;
  // Footprints: ti * ((tr - 1) * stride + k) * ((tc - 1) * stride + k) with
  // 16-bit fields and stride < 8 stays below 16 + 19 + 19 = 54 bits. Later
  // checks bound it tighter, but the widths must not rely on that.
  localparam int HaloW = 19;
  localparam int FpW   = 64;
  localparam int BusBytes = AxiDataWidth / 8;

  localparam logic [31:0] PmMask  = 32'(PM - 1);
  localparam logic [31:0] PnMask  = 32'(PN - 1);
  localparam logic [31:0] BusMask = 32'(BusBytes - 1);
  localparam logic [15:0] PnMask16 = 16'(PN - 1);
  // The largest data value: the clip bound must not exceed it.
  localparam logic [15:0] DataMax = 16'((1 << (DataWidth - 1)) - 1);
  // The most cells an average pool divides by (golden.arith.AVG_N_MAX).
  localparam int AvgNMax = 4096;

  // Strides divide with uz_util_pkg::div_stride, as in uz_layer and uz_post.

  // v % s != 0 for a pool stride s of 1..3 (s = 0 fails BAD_POOL first).
  function automatic logic not_multiple(input logic [15:0] v, input logic [1:0] s);
    logic r;
    case (s)
      2'd2:    r = (v & 16'd1) != 16'd0;
      2'd3:    r = (v % 16'd3) != 16'd0;
      default: r = 1'b0;
    endcase
    not_multiple = r;
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

  logic is_conv, is_fc, is_pool, pooled, k_ok;
  logic [DimW-1:0] pad_h, pad_w;        // padded input height, width
  logic [DimW-1:0] ch, cw;              // convolution result (POOL: its input)
  logic [DimW-1:0] ph, pw;              // pool input plus its padding
  logic [DimW-1:0] eh, ew;              // expected out_h, out_w
  logic [DimW-1:0] tr_wide, tc_wide;    // widened to compare with dims
  logic [DimW-1:0] pk_h, pk_w;          // the pool window (golden.isa.pool_window)
  logic [1:0]      pk_s;
  logic [3:0]      pp_t, pp_b, pp_l, pp_r;
  logic            pp_any;
  logic [2*DimW-1:0] pk_cells;
  logic [31:0] in_c_up, out_c_up;       // in_c, out_c rounded up to PN, PM
  logic [31:0] ovsf_l;                  // 2**log2_l
  logic [5:0]  n_ones;                  // codes code_mask keeps
  logic [16:0] in_c_end, out_c_end;     // channel after a slice's last
  logic [15:0] in_c_all, out_c_all;     // channels of the whole tensor (max(total, c))
  logic [HaloW-1:0] ih, iw;             // input rows, cols one tile reads
  logic [FpW-1:0] in_fp, out_fp, wgt_fp;
  logic c_magic, c_kind, c_unsup, c_zero, c_kernel, c_stride, c_pad, c_ktl, c_pool;
  logic c_shape, c_tile, c_shift, c_codes, c_align, c_large;
  logic dw;                             // depthwise (golden.isa.depthwise)
  logic [31:0] dw_wvec;                 // its weights per channel (golden.isa.wvec_len)

  always_comb begin
    is_conv = f_kind == KindConv;
    is_fc   = f_kind == KindFc;
    is_pool = f_kind == KindPool;
    pooled  = is_pool || (is_conv && f_pool);
    k_ok    = (f_k == 4'd1 || f_k == 4'd3 || f_k == 4'd5 || f_k == 4'd7 || f_k == 4'd11) &&
              32'(f_k) <= MaxK;

    // Geometry (golden.isa.conv_dims, pool_out).
    pad_h = DimW'(f_in_h) + DimW'(f_pad_t) + DimW'(f_pad_b);
    pad_w = DimW'(f_in_w) + DimW'(f_pad_l) + DimW'(f_pad_r);
    if (is_pool) begin
      ch = DimW'(f_in_h);
      cw = DimW'(f_in_w);
    end else begin
      ch = div_stride(pad_h - DimW'(f_k), f_stride) + DimW'(1);
      cw = div_stride(pad_w - DimW'(f_k), f_stride) + DimW'(1);
    end
    if (f_pool_global) begin
      pk_h = ch;
      pk_w = cw;
      pk_s = 2'd1;
      pp_t = '0; pp_b = '0; pp_l = '0; pp_r = '0;
    end else begin
      pk_h = DimW'((f_pool_kh != '0) ? f_pool_kh : 8'(f_pool_k));
      pk_w = DimW'((f_pool_kw != '0) ? f_pool_kw : 8'(f_pool_k));
      pk_s = f_pool_s;
      pp_t = 4'(f_pool_pad);
      pp_b = f_pool_asym ? f_pool_pad_b : 4'(f_pool_pad);
      pp_l = f_pool_asym ? f_pool_pad_l : 4'(f_pool_pad);
      pp_r = f_pool_asym ? f_pool_pad_r : 4'(f_pool_pad);
    end
    pp_any   = (pp_t | pp_b | pp_l | pp_r) != '0;
    pk_cells = (2*DimW)'(pk_h) * (2*DimW)'(pk_w);
    ph = ch + DimW'(pp_t) + DimW'(pp_b);
    pw = cw + DimW'(pp_l) + DimW'(pp_r);
    if (pooled) begin
      eh = div_stride(ph - pk_h, {1'b0, pk_s}) + DimW'(1);
      ew = div_stride(pw - pk_w, {1'b0, pk_s}) + DimW'(1);
    end else begin
      eh = ch;
      ew = cw;
    end
    tr_wide = DimW'(f_tr);
    tc_wide = DimW'(f_tc);
    in_c_up  = (32'(f_in_c) + PnMask) & ~PnMask;
    out_c_up = (32'(f_out_c) + PmMask) & ~PmMask;
    ovsf_l   = 32'd1 << f_log2_l;
    in_c_end  = 17'(f_in_c_off) + 17'(f_in_c);
    out_c_end = 17'(f_out_c_off) + 17'(f_out_c);
    in_c_all  = (f_in_c_total > f_in_c) ? f_in_c_total : f_in_c;
    out_c_all = (f_out_c_total > f_out_c) ? f_out_c_total : f_out_c;
    n_ones   = '0;
    for (int i = 0; i < 32; i++) n_ones = n_ones + 6'(f_code_mask[i]);

    // Buffer footprints (golden.isa.tile_footprint, in_tile_dims).
    if (is_pool) begin
      ih = HaloW'(f_tr);
      iw = HaloW'(f_tc);
    end else begin
      ih = HaloW'(f_tr - 16'd1) * HaloW'(f_stride) + HaloW'(f_k);
      iw = HaloW'(f_tc - 16'd1) * HaloW'(f_stride) + HaloW'(f_k);
    end
    in_fp  = FpW'(f_ti) * FpW'(ih) * FpW'(iw);
    out_fp = FpW'(f_to) * FpW'(f_tr) * FpW'(f_tc);
    dw      = f_groups > 16'd1 && f_groups == f_in_c && f_groups == f_out_c;
    dw_wvec = (32'(f_k) * 32'(f_k) + PnMask) & ~PnMask;
    wgt_fp  = dw ? FpW'(f_to) * FpW'(dw_wvec) : FpW'(f_to) * FpW'(f_ti) * FpW'(f_k) * FpW'(f_k);

    // One flag per error code, the checks of golden.isa.check.
    c_magic  = f_magic != DescMagic;
    c_kind   = !(is_conv || is_fc || is_pool);
    // of the grouped convolutions only depthwise runs (the compiler lowers
    // the others to dense channel-slice layers)
    c_unsup  = (f_groups > 16'd1 && !dw) || f_in_shuffle > 8'd1;
    c_zero   = f_in_c == '0 || f_in_h == '0 || f_in_w == '0 ||
               f_out_c == '0 || f_out_h == '0 || f_out_w == '0;
    c_kernel = !is_pool && (!k_ok || (is_fc && f_k != 4'd1));
    c_stride = !is_pool && (f_stride == 3'd0 || f_stride > 3'd4 || (is_fc && f_stride != 3'd1));
    c_pad    = !is_pool && (f_pad_t >= f_k || f_pad_b >= f_k || f_pad_l >= f_k || f_pad_r >= f_k);
    c_ktl    = !is_pool && (DimW'(f_k) > pad_h || DimW'(f_k) > pad_w);
    c_pool   = (is_fc && f_pool) ||
               (pooled && !f_pool_global &&
                ((f_pool_kh == '0 && f_pool_kw == '0 && !(f_pool_k == 2'd2 || f_pool_k == 2'd3)) ||
                 pk_h == '0 || pk_w == '0 || f_pool_s == 2'd0 ||
                 DimW'(pp_t) >= pk_h || DimW'(pp_b) >= pk_h || DimW'(pp_l) >= pk_w || DimW'(pp_r) >= pk_w ||
                 pk_h > ph || pk_w > pw)) ||
               // only a POOL layer averages, over at most AVG_N_MAX cells
               (pooled && f_pool_avg && (!is_pool || pk_cells > (2*DimW)'(AvgNMax)));
    c_shape  = (is_pool && f_out_c != f_in_c) ||
               (dw && !is_conv) ||
               (is_pool && f_res) ||
               // a channel slice inside its tensor
               in_c_end > 17'(in_c_all) || out_c_end > 17'(out_c_all) ||
               DimW'(f_out_h) != eh || DimW'(f_out_w) != ew ||
               (is_fc && (f_in_h != 16'd1 || f_in_w != 16'd1));
    c_tile   = f_tr == '0 || f_tc == '0 || f_ti == '0 || f_to == '0 ||
               tr_wide > ch || tc_wide > cw ||
               // A tiled pool must not straddle tiles.
               (pooled && (tr_wide < ch || tc_wide < cw) &&
                (pk_h != DimW'(f_pool_s) || pk_w != DimW'(f_pool_s) || pp_any || f_pool_global ||
                 (tr_wide < ch && not_multiple(f_tr, f_pool_s)) ||
                 (tc_wide < cw && not_multiple(f_tc, f_pool_s)))) ||
               (dw ? f_ti != f_to : 32'(f_ti) > in_c_up) || (32'(f_ti) & PnMask) != '0 ||
               (is_pool && f_to != f_ti) ||
               (!is_pool && ((32'(f_to) & PmMask) != '0 || 32'(f_to) > out_c_up));
    c_shift  = 32'($signed(f_bias_shift)) < ShiftMin || 32'($signed(f_bias_shift)) > ShiftMax ||
               32'($signed(f_data_shift)) < ShiftMin || 32'($signed(f_data_shift)) > ShiftMax ||
               32'($signed(f_gen_shift)) < ShiftMin || 32'($signed(f_gen_shift)) > ShiftMax ||
               (f_res && (32'($signed(f_res_shift)) < ShiftMin || 32'($signed(f_res_shift)) > ShiftMax)) ||
               (f_clip && f_clip_hi > DataMax) ||
               (is_pool && f_data_shift != '0);
    // Once 2**log2_l equals OvsfLen, check() measures the mask and the code
    // count against OvsfLen, so the constant serves for both.
    c_codes  = f_ovsf && (is_pool || ovsf_l != 32'(OvsfLen) ||
                          (f_code_mask >> OvsfLen) != '0 ||
                          f_n_codes == '0 || 32'(f_n_codes) > 32'(OvsfLen) ||
                          n_ones != f_n_codes);
    c_align  = ((f_in_addr | f_out_addr | f_wgt_addr | f_bias_addr) & BusMask) != '0 ||
               (f_res && (f_res_addr & BusMask) != '0) ||
               ((f_in_c_off | f_out_c_off) & PnMask16) != '0;
    c_large  = in_fp > FpW'(InBufElems) || out_fp > FpW'(OutBufElems) ||
               (!is_pool && wgt_fp > FpW'(WgtBufElems));

    if      (c_magic)  err_o = ErrBadMagic;
    else if (c_kind)   err_o = ErrBadKind;
    else if (c_unsup)  err_o = ErrUnsupported;
    else if (c_zero)   err_o = ErrZeroDim;
    else if (c_kernel) err_o = ErrBadKernel;
    else if (c_stride) err_o = ErrBadStride;
    else if (c_pad)    err_o = ErrBadPad;
    else if (c_ktl)    err_o = ErrKernelTooLarge;
    else if (c_pool)   err_o = ErrBadPool;
    else if (c_shape)  err_o = ErrShapeMismatch;
    else if (c_tile)   err_o = ErrBadTile;
    else if (c_shift)  err_o = ErrBadShift;
    else if (c_codes)  err_o = ErrBadCodes;
    else if (c_align)  err_o = ErrBadAlign;
    else if (c_large)  err_o = ErrTooLarge;
    else               err_o = ErrNone;
  end
endmodule
