// The shared fixed-point shift (docs/arithmetic.md, golden/arith.py
// shift_round_sat): a signed right shift with round-half-up, or a left shift
// for negative amounts, then saturation to OutWidth. Used for the bias shift,
// the data shift and the generator shift. Purely combinational.
module uz_shift_round_sat #(
  parameter int InWidth    = 48,
  parameter int OutWidth   = 16,
  parameter int ShiftWidth = 8
) (
  input  logic [InWidth-1:0]    data_i,   // two's complement
  input  logic [ShiftWidth-1:0] shift_i,  // two's complement right-shift amount
  output logic [OutWidth-1:0]   data_o    // two's complement, saturated
);
  // Wide enough for x << OutWidth and for x + rounding constant.
  localparam int WideWidth = InWidth + OutWidth + 1;

  logic signed [WideWidth-1:0] x_wide, rounded, shifted;
  logic signed [ShiftWidth-1:0] shift;
  logic [ShiftWidth-1:0] rmag, lmag;
  logic signed [WideWidth-1:0] out_max, out_min;

  always_comb begin
    x_wide  = WideWidth'($signed(data_i));
    shift   = $signed(shift_i);
    out_max = (WideWidth'(1) <<< (OutWidth - 1)) - WideWidth'(1);
    out_min = -out_max - WideWidth'(1);
    rmag    = '0;
    lmag    = '0;
    rounded = x_wide;
    shifted = x_wide;
    if (shift > 0) begin
      // Beyond InWidth every value rounds to 0; capping keeps the constant small.
      rmag = (shift > $signed(ShiftWidth'(InWidth))) ? ShiftWidth'(InWidth) : shift_i;
      rounded = x_wide + (WideWidth'(1) <<< (rmag - 1'b1));
      shifted = rounded >>> rmag;
    end else if (shift < 0) begin
      // Beyond OutWidth every non-zero value saturates anyway.
      lmag = ShiftWidth'(-shift);
      if (lmag > ShiftWidth'(OutWidth)) lmag = ShiftWidth'(OutWidth);
      shifted = x_wide <<< lmag;
    end
    if (shifted > out_max)      data_o = out_max[OutWidth-1:0];
    else if (shifted < out_min) data_o = out_min[OutWidth-1:0];
    else                        data_o = shifted[OutWidth-1:0];
  end
endmodule
