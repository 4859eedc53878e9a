// Helpers shared by several blocks of the engine.
package uz_util_pkg;

  // v / s for a stride s of 1..4 without a divider or a multiplier: halving
  // and quartering are shifts; a third is a long division by 3, one bit at a
  // time from the top, with a remainder of two bits (a chain of 3-input
  // steps that maps onto a few LUTs per bit; a multiply by the reciprocal
  // would take a DSP at every use). Other strides only occur where a
  // descriptor check has already failed; they return v. One assignment per
  // arm (no return inside the case): Verilator's line coverage does not count
  // arms that return.
  //
  // No bit or part selects of the arguments or locals: Icarus 11 puts a
  // selected function variable into the sensitivity of every always_comb
  // that calls the function, so two such processes (uz_layer's and
  // uz_desc_check's) retrigger each other forever at one simulation time.
  // Shifts and masks instead; the division runs only for a stride of 3.
  function automatic logic [16:0] div_stride(logic [16:0] v, logic [2:0] s);
    logic [16:0] q;
    logic [2:0]  x;                  // remainder so far (0..2), then with the next bit (0..5)
    logic        ge;
    case (s)
      3'd2:    q = v >> 1;
      3'd3: begin
        q = '0;
        x = '0;
        for (int i = 16; i >= 0; i--) begin
          x  = (x << 1) | 3'((v >> i) & 17'd1);
          ge = (x >= 3'd3);
          q  = (q << 1) | 17'(ge);
          x  = ge ? x - 3'd3 : x;
        end
      end
      3'd4:    q = v >> 2;
      default: q = v;
    endcase
    div_stride = q;
  endfunction

endpackage : uz_util_pkg
