// The shared fixed-point shift (docs/arithmetic.md, golden/arith.py
// shift_round_sat): a signed right shift with round-half-up, or a left shift
// for negative amounts, then saturation to OutWidth. Used for the bias shift,
// the data shift and the generator shift. Purely combinational.
//
// Built for size: the OVSF generator has one per generated weight. Both
// directions are one arithmetic right shift of z = x * 2^OutWidth by
//   t = clamp(shift + OutWidth, 0, InWidth + OutWidth)
// (a left shift by l is a right shift of z by OutWidth - l; amounts past
// InWidth round every value to 0, past -OutWidth saturate every non-zero
// value, so clamping changes nothing). Round-half-up adds the bit shifted out
// last: floor((x + 2^(r-1)) / 2^r) = floor(x / 2^r) + x[r-1]. The value
// fits OutWidth bits iff the bits of z from position OutWidth-1+t up all equal
// its sign: a mask that depends on the shift only, so every instance fed the
// same shift shares it after flattening. No adder wider than OutWidth and no
// comparison of the wide value.
//
// PreDecoded = 1: shift_i already holds t (unsigned, ShiftWidth >= the bits
// of InWidth + OutWidth), so the clamp (a 32-bit add and two compares) is
// off the data path. For a per-layer shift the user registers t once
// (uz_post, uz_compute): the barrel shift's selects and the saturation mask
// then come straight from flip-flops.
//
// TMin, TMax: a user whose t never leaves TMin..TMax (uz_ovsf_gen: the
// generator shifts desc_check admits) passes t - TMin (PreDecoded, ShiftWidth
// >= the bits of TMax - TMin) and gets a barrel shift of that many ways only:
// the shift by TMin is wiring. Not PreDecoded, t is clamped into the range.
// The defaults are the whole range, t itself.
module uz_shift_round_sat #(
  parameter int InWidth    = 48,
  parameter int OutWidth   = 16,
  parameter int ShiftWidth = 8,
  parameter bit PreDecoded = 1'b0,
  parameter int TMin       = 0,
  parameter int TMax       = InWidth + OutWidth
) (
  input  logic [InWidth-1:0]    data_i,   // two's complement
  input  logic [ShiftWidth-1:0] shift_i,  // two's complement right-shift amount (PreDecoded: t - TMin)
  output logic [OutWidth-1:0]   data_o    // two's complement, saturated
);
  localparam int ZWidth = InWidth + OutWidth;     // z = x * 2^OutWidth
  // t - TMin in 0..TMax - TMin (one bit when TMax = TMin: no zero widths)
  localparam int TWidth = (TMax > TMin) ? $clog2(TMax - TMin + 1) : 1;
`ifndef SYNTHESIS
  initial begin : ParamsLegal_A
    if (!(TMin >= 0 && TMin <= TMax && TMax <= ZWidth))
      $fatal(1, "uz_shift_round_sat: TMin=%0d, TMax=%0d not within 0..%0d", TMin, TMax, ZWidth);
  end
`endif
  localparam logic [OutWidth-1:0] OutMax = {1'b0, {(OutWidth-1){1'b1}}};
  localparam logic [OutWidth-1:0] OutMin = {1'b1, {(OutWidth-1){1'b0}}};

  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0]              t_dec;        // whole, then narrowed (Icarus 11 casts no call)
  /* verilator lint_on UNUSEDSIGNAL */
  logic [TWidth-1:0]        t;            // t - TMin
  // {z, 0}: the extra low bit brings out z[t-1], the rounding bit (0 for
  // t = 0 and for every left shift, whose low bits of z are zero)
  logic signed [ZWidth:0]   z_ext;
  logic signed [ZWidth:0]   z_min;        // z_ext shifted by TMin: wiring
  /* verilator lint_off UNUSEDSIGNAL */
  logic signed [ZWidth:0]   w_ext;        // its low OutWidth + 1 bits are the result
  /* verilator lint_on UNUSEDSIGNAL */
  logic                     sign, fits, rbit;
  logic [ZWidth-1:0]        hi_mask;      // bits OutWidth-1+TMin+t and up
  logic [OutWidth-1:0]      w, sum;

  always_comb begin
    t_dec = uz_util_pkg::shift_decode(32'($signed(shift_i)), OutWidth, ZWidth);
    // (constant conditions: the defaults add no logic)
    if (TMin > 0 && t_dec < 32'(TMin))           t_dec = 32'(TMin);
    else if (TMax < ZWidth && t_dec > 32'(TMax)) t_dec = 32'(TMax);
    t     = PreDecoded ? TWidth'(shift_i) : TWidth'(t_dec - 32'(TMin));
    z_ext = {data_i, {OutWidth{1'b0}}, 1'b0};
    z_min = z_ext >>> TMin;
    sign  = data_i[InWidth-1];
    w_ext = z_min >>> t;
    w     = w_ext[OutWidth:1];
    rbit  = w_ext[0];
    // bits OutWidth-1+t and up of z (z_ext one higher) all equal the sign
    // (vector operations, not a loop over the bits: Icarus is ten times
    // faster on them). A constant shifted by t: a decode of t, no adder
    // between t and the mask.
    hi_mask = ({ZWidth{1'b1}} << (OutWidth - 1 + TMin)) << t;
    fits    = ((z_ext[ZWidth:1] ^ {ZWidth{sign}}) & hi_mask) == '0;
    sum = w + OutWidth'(rbit);
    if (!fits)                  data_o = sign ? OutMin : OutMax;
    // rounding up past the largest value (w = OutMax, rbit = 1)
    else if (sum[OutWidth-1] && !w[OutWidth-1]) data_o = OutMax;
    else                        data_o = sum;
  end
endmodule
