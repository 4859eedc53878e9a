// Controller: runs layer_count descriptors from desc_addr. For each layer it
// fetches the descriptor, validates it (uz_desc_check, a few tens of cycles
// while desc_check_o holds it), runs uz_layer, waits
// until every write has been acknowledged, and reports the layer's counters.
// Any illegal descriptor, bus error or abort stops the program with an error
// code; the DMAs are drained first so the engine is ready for the next start.
module uz_ctrl
  import uz_isa_pkg::*;
#(
  parameter int AxiDataWidth = 128,
  parameter int BeatsWidth   = 24
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,
  // from the registers
  input  logic                    start_i,
  input  logic                    abort_i,
  input  logic [31:0]             desc_addr_i,
  input  logic [15:0]             layer_count_i,
  // status
  output logic                    busy_o,
  output logic                    done_o,
  output logic                    err_o,
  output logic [7:0]              err_code_o,
  output logic [15:0]             err_layer_o,
  output logic [15:0]             cur_layer_o,
  output logic                    perf_valid_o,
  output logic [15:0]             perf_layer_o,
  output logic [63:0]             perf_cycles_o,
  output logic [63:0]             perf_mac_busy_o,
  output logic [63:0]             perf_mem_stall_o,
  output logic [63:0]             perf_gen_busy_o,
  // descriptor fetch through the read DMA (while no layer runs)
  output logic                    fetch_o,         // the controller owns the read DMA
  output logic                    rd_cmd_valid_o,
  input  logic                    rd_cmd_ready_i,
  output logic [31:0]             rd_cmd_addr_o,
  output logic [BeatsWidth-1:0]   rd_cmd_beats_o,
  input  logic                    rd_data_valid_i,
  output logic                    rd_data_ready_o,
  input  logic [AxiDataWidth-1:0] rd_data_i,
  input  logic                    rd_data_last_i,
  input  logic                    rd_err_i,
  input  logic                    rd_idle_i,
  output logic                    rd_err_clear_o,
  input  logic                    wr_err_i,
  input  logic                    wr_idle_i,
  output logic                    wr_err_clear_o,
  output logic                    dma_abort_o,
  // the layer
  output logic [DescBits-1:0]     desc_o,
  output logic                    desc_check_o,    // uz_desc_check runs on desc_o (held)
  input  logic                    desc_done_i,     // its result is ready: desc_err_i
  input  logic [7:0]              desc_err_i,      // uz_desc_check on desc_o
  output logic                    layer_start_o,
  output logic                    layer_abort_o,
  input  logic                    layer_done_i,
  input  logic                    mac_step_i,
  input  logic                    mem_stall_i,
  input  logic                    gen_busy_i
);
  localparam int DescBeats = DescBits / AxiDataWidth;

  typedef enum logic [2:0] {CtIdle, CtFetchCmd, CtFetchData, CtCheck, CtRun, CtFlush, CtStop} ct_state_e;
  ct_state_e state_q;

  logic [15:0]           layer_q;
  logic [DescBits-1:0]   desc_q;
  logic [$clog2(DescBeats+1)-1:0] beat_q;
  logic [7:0]            stop_code_q;
  logic [63:0]           cyc_q, mac_q, stall_q, gen_q;

  assign desc_o = desc_q;

  // The first error wins; abort counts as one.
  logic [7:0] bus_err;
  assign bus_err = rd_err_i ? 8'(ErrAxiRead) : (wr_err_i ? 8'(ErrAxiWrite) : 8'(ErrNone));

  // Checking and running stop on an abort or a bus error, the abort first.
  logic       halt;
  logic [7:0] halt_code;
  assign halt      = abort_i || bus_err != 8'(ErrNone);
  assign halt_code = abort_i ? 8'(ErrAborted) : bus_err;

  // Next state (combinational) and its reason when it stops.
  ct_state_e  state_d;
  logic [7:0] stop_code_d;
  always_comb begin
    state_d     = state_q;
    stop_code_d = stop_code_q;
    unique case (state_q)
      CtIdle:
        if (start_i && layer_count_i != '0) state_d = CtFetchCmd;
      CtFetchCmd:
        if (abort_i) begin
          stop_code_d = 8'(ErrAborted);
          state_d     = CtStop;
        end else if (rd_cmd_ready_i) begin
          state_d     = CtFetchData;
        end
      CtFetchData:
        if (abort_i) begin
          stop_code_d = 8'(ErrAborted);
          state_d     = CtStop;
        end else if (rd_data_valid_i && rd_data_last_i) begin
          state_d     = CtCheck;
        end
      // the check takes some cycles; an abort or bus error meanwhile stops
      // at once (leaving CtCheck drops desc_check_o, which abandons it)
      CtCheck:
        if (halt) begin
          stop_code_d = halt_code;
          state_d     = CtStop;
        end else if (desc_done_i) begin
          if (desc_err_i != 8'(ErrNone)) begin
            stop_code_d = desc_err_i;
            state_d     = CtStop;
          end else begin
            state_d     = CtRun;
          end
        end
      CtRun:
        if (halt) begin
          stop_code_d = halt_code;
          state_d     = CtStop;
        end else if (layer_done_i) begin
          state_d     = CtFlush;
        end
      // every write acknowledged before the layer counts as done
      CtFlush:
        if (bus_err != 8'(ErrNone)) begin
          stop_code_d = bus_err;
          state_d     = CtStop;
        end else if (wr_idle_i && rd_idle_i) begin
          if (layer_q == layer_count_i - 1'b1) state_d = CtIdle;
          else                                 state_d = CtFetchCmd;
        end
      // wait for the DMAs to drain, then report
      CtStop:
        if (rd_idle_i && wr_idle_i) state_d = CtIdle;
      // unreachable: every encoding of the state is an arm above
      /* verilator coverage_off */
      default: state_d = CtIdle;
      /* verilator coverage_on */
    endcase
  end

  logic [DescBits-1:0] desc_shifted;
  if (DescBeats > 1) begin : gen_desc_shift
    assign desc_shifted = {rd_data_i, desc_q[DescBits-1:AxiDataWidth]};
  end else begin : gen_desc_one_beat
    assign desc_shifted = rd_data_i;
  end

  // A layer's flush completes: its counters are reported and cleared.
  logic layer_flushed;
  assign layer_flushed = (state_q == CtFlush) && bus_err == 8'(ErrNone) && wr_idle_i && rd_idle_i;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q <= CtIdle;
      layer_q <= '0;
      desc_q  <= '0;
      beat_q  <= '0;
      stop_code_q <= '0;
      cyc_q <= '0; mac_q <= '0; stall_q <= '0; gen_q <= '0;
    end else begin
      state_q     <= state_d;
      stop_code_q <= stop_code_d;
      if (state_q != CtIdle && state_q != CtStop) begin
        cyc_q <= cyc_q + 1'b1;
        if (mac_step_i)  mac_q   <= mac_q + 1'b1;
        if (mem_stall_i) stall_q <= stall_q + 1'b1;
        if (gen_busy_i)  gen_q   <= gen_q + 1'b1;
      end
      if (state_q == CtIdle && start_i) begin
        layer_q <= '0;
        cyc_q <= '0; mac_q <= '0; stall_q <= '0; gen_q <= '0;
      end
      if (state_q == CtFetchCmd) beat_q <= '0;
      // The descriptor's beats arrive in order, the first lowest: they shift
      // in from the top (no write at a run-time position).
      if (state_q == CtFetchData && rd_data_valid_i) begin
        desc_q <= desc_shifted;
        beat_q <= beat_q + 1'b1;
      end
      if (layer_flushed) begin
        cyc_q <= '0; mac_q <= '0; stall_q <= '0; gen_q <= '0;
        if (layer_q != layer_count_i - 1'b1) layer_q <= layer_q + 1'b1;
      end
    end
  end

  assign busy_o          = (state_q != CtIdle);
  assign cur_layer_o     = layer_q;
  assign fetch_o         = (state_q == CtFetchCmd) || (state_q == CtFetchData);
  assign rd_cmd_valid_o  = (state_q == CtFetchCmd) && !abort_i;
  assign rd_cmd_addr_o   = desc_addr_i + 32'(layer_q) * DescBytes;
  assign rd_cmd_beats_o  = BeatsWidth'(DescBeats);
  assign rd_data_ready_o = (state_q == CtFetchData);
  assign desc_check_o    = (state_q == CtCheck);
  assign layer_start_o   = (state_q == CtCheck) && desc_done_i && !abort_i && bus_err == 8'(ErrNone) &&
                           desc_err_i == 8'(ErrNone);
  // Stopping: the layer and the DMAs abandon their work.
  assign layer_abort_o   = (state_q == CtStop);
  assign dma_abort_o     = (state_q == CtStop);
  assign rd_err_clear_o  = start_i && (state_q == CtIdle);
  assign wr_err_clear_o  = start_i && (state_q == CtIdle);

  // An empty program (layer_count 0) is done at once.
  assign done_o       = ((state_q == CtFlush) && bus_err == 8'(ErrNone) && wr_idle_i && rd_idle_i &&
                         (layer_q == layer_count_i - 1'b1)) ||
                        ((state_q == CtIdle) && start_i && layer_count_i == '0);
  assign err_o        = (state_q == CtStop) && rd_idle_i && wr_idle_i;
  assign err_code_o   = stop_code_q;
  assign err_layer_o  = layer_q;

  assign perf_valid_o     = (state_q == CtFlush) && bus_err == 8'(ErrNone) && wr_idle_i && rd_idle_i;
  assign perf_layer_o     = layer_q;
  assign perf_cycles_o    = cyc_q;
  assign perf_mac_busy_o  = mac_q;
  assign perf_mem_stall_o = stall_q;
  assign perf_gen_busy_o  = gen_q;

  // ---------------------------------------------------------------------------
  // Assertions (tests/testplan.md, "RTL assertions"). The stability check
  // compares with last cycle's values in shadow registers (Icarus has no $past).
  // ---------------------------------------------------------------------------
  `include "uz_assert.svh"
`ifndef UZ_NO_ASSERT
  logic                  sh_cmd_stall_q;
  logic [31:0]           sh_cmd_addr_q;
  logic                  sh_check_q;
  logic [DescBits-1:0]   sh_desc_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sh_cmd_stall_q <= 1'b0;
      sh_cmd_addr_q  <= '0;
      sh_check_q     <= 1'b0;
      sh_desc_q      <= '0;
    end else begin
      sh_cmd_stall_q <= rd_cmd_valid_o & ~rd_cmd_ready_i;
      sh_cmd_addr_q  <= rd_cmd_addr_o;
      sh_check_q     <= state_q == CtCheck;
      sh_desc_q      <= desc_q;
    end
  end
  `ASSERT_KNOWN(CtStateKnown_A, state_q, clk_i, rst_ni)
  `ASSERT(CtStateLegal_A, 32'(state_q) <= 32'(CtStop), clk_i, rst_ni)
  // the descriptor fetch command is held until taken; only an abort withdraws it
  `ASSERT(FetchCmdStable_A, !sh_cmd_stall_q || abort_i ||
          (rd_cmd_valid_o && rd_cmd_addr_o == sh_cmd_addr_q), clk_i, rst_ni)
  // a descriptor is DescBeats beats: desc_q is never written beyond its end
  `ASSERT(FetchBeatInRange_A, !(state_q == CtFetchData && rd_data_valid_i) ||
          32'(beat_q) < DescBeats, clk_i, rst_ni)
  `ASSERT(FetchLastOnLastBeat_A, !(state_q == CtFetchData && rd_data_valid_i && rd_data_last_i) ||
          32'(beat_q) == DescBeats - 1, clk_i, rst_ni)
  `ASSERT_NEVER(DoneAndError_A, done_o && err_o, clk_i, rst_ni)
  `ASSERT(ErrorHasCode_A, !err_o || stop_code_q != 8'(ErrNone), clk_i, rst_ni)
  `ASSERT(StartOnlyWhenChecked_A, !layer_start_o || (desc_done_i && desc_err_i == 8'(ErrNone)), clk_i, rst_ni)
  // the descriptor holds while it is checked (it is written only in CtFetchData)
  `ASSERT(DescHeldWhileChecked_A, !(state_q == CtCheck && sh_check_q) || desc_q == sh_desc_q, clk_i, rst_ni)
  `ASSERT_KNOWN(CtBusyKnown_A, busy_o, clk_i, rst_ni)
  `ASSERT_KNOWN(CtDoneKnown_A, done_o, clk_i, rst_ni)
  `ASSERT_KNOWN(CtErrKnown_A, err_o, clk_i, rst_ni)
  `ASSERT_KNOWN(CtLayerStartKnown_A, layer_start_o, clk_i, rst_ni)
`endif
endmodule
