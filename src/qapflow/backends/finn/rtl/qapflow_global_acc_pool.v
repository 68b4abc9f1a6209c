// qapflow: a global sum pool on FINN's AXI streams, in place of FINN's GlobalAccPool_hls.
//
// FINN 1.6.1 has GlobalAccPool in HLS only (finn-hlslib's AccPool_Batch), and HLS cannot be
// compiled or simulated here (no Vitis), so qapflow owns this small RTL module with the same
// stream interface and the same arithmetic: per channel, the sum of the PIXELS input values
// (sign-extended where the input type is signed) on OUT_BITS, the exact range FINN's
// GlobalAccPool.get_output_datatype gives. Input words: for each pixel, FOLDS words of PE
// channels (element 0 in the lowest bits, as FINN packs them); output: FOLDS words of PE sums
// after the last pixel. The division of the average is not done here: the next Thresholding
// takes the sum (qapflow's IntGraph keeps the divisor in the thresholds).
module qapflow_global_acc_pool #(
    parameter integer PIXELS = 4,
    parameter integer FOLDS = 1,
    parameter integer PE = 1,
    parameter integer IN_BITS = 4,
    parameter integer OUT_BITS = 8,
    parameter integer SIGNED = 0,
    parameter integer IN_W = 8,
    parameter integer OUT_W = 8
) (
    input wire ap_clk,
    input wire ap_rst_n,
    input wire [IN_W-1:0] in0_V_TDATA,
    input wire in0_V_TVALID,
    output wire in0_V_TREADY,
    output wire [OUT_W-1:0] out0_V_TDATA,
    output wire out0_V_TVALID,
    input wire out0_V_TREADY
);
    localparam integer PBITS = PIXELS > 1 ? $clog2(PIXELS) : 1;
    localparam integer FBITS = FOLDS > 1 ? $clog2(FOLDS) : 1;

    reg [OUT_BITS-1:0] acc [0:FOLDS*PE-1];
    reg [OUT_BITS*PE-1:0] out_data;
    reg out_valid;
    reg [PBITS-1:0] pixel;
    reg [FBITS-1:0] fold;

    assign in0_V_TREADY = !out_valid || out0_V_TREADY;
    assign out0_V_TVALID = out_valid;
    generate
        if (OUT_W > OUT_BITS * PE) begin : pad
            assign out0_V_TDATA = {{(OUT_W - OUT_BITS * PE){1'b0}}, out_data};
        end else begin : nopad
            assign out0_V_TDATA = out_data;
        end
    endgenerate

    wire in_fire = in0_V_TVALID && in0_V_TREADY;
    wire last_pixel = pixel == PIXELS - 1;

    // this word's sums: the stored partial sums (none at the first pixel) plus the inputs
    wire [OUT_BITS*PE-1:0] sums;
    genvar e;
    generate
        for (e = 0; e < PE; e = e + 1) begin : lane
            wire [IN_BITS-1:0] x = in0_V_TDATA[e*IN_BITS +: IN_BITS];
            wire [OUT_BITS-1:0] wide = SIGNED ? {{(OUT_BITS - IN_BITS){x[IN_BITS-1]}}, x}
                                              : {{(OUT_BITS - IN_BITS){1'b0}}, x};
            wire [OUT_BITS-1:0] partial = pixel == 0 ? {OUT_BITS{1'b0}} : acc[fold*PE + e];
            assign sums[e*OUT_BITS +: OUT_BITS] = partial + wide;
        end
    endgenerate

    integer k;
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            out_valid <= 1'b0;
            pixel <= 0;
            fold <= 0;
            out_data <= 0;
        end else begin
            if (out_valid && out0_V_TREADY) out_valid <= 1'b0;
            if (in_fire) begin
                if (last_pixel) begin
                    out_data <= sums;
                    out_valid <= 1'b1;
                end else begin
                    for (k = 0; k < PE; k = k + 1) acc[fold*PE + k] <= sums[k*OUT_BITS +: OUT_BITS];
                end
                if (fold == FOLDS - 1) begin
                    fold <= 0;
                    pixel <= last_pixel ? 0 : pixel + 1;
                end else begin
                    fold <= fold + 1;
                end
            end
        end
    end
endmodule
