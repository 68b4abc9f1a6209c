// qapflow: a window max pool on FINN's AXI streams, in place of FINN's Pool_hls (Function MaxPool).
//
// FINN 1.6.1 (finn-plus) lowers a MaxPool to a sliding window (ConvolutionInputGenerator, depthwise,
// which has an RTL variant) and a Pool layer that it has in HLS only (finn-hlslib's Pool_batch);
// HLS cannot be compiled or simulated here (no Vitis), so qapflow owns this small RTL module with
// the same stream interface and the same arithmetic: the max of each channel over the KERNEL
// values of its window, compared as signed integers where the input type is signed. The depthwise
// window generator sends, per output pixel and per fold of PE channels, the KERNEL window
// positions one word each (PE channels a word, element 0 in the lowest bits, as FINN packs them):
// (C / PE, K_H * K_W, PE). So the max is kept over KERNEL consecutive words and sent as one word
// of PE maxima after the last: no line buffer, no state beyond one word.
module qapflow_max_pool #(
    parameter integer KERNEL = 4,
    parameter integer PE = 1,
    parameter integer BITS = 4,
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
    localparam integer KBITS = KERNEL > 1 ? $clog2(KERNEL) : 1;

    reg [BITS*PE-1:0] best;      // the maxima over the window's words so far
    reg [BITS*PE-1:0] out_data;
    reg out_valid;
    reg [KBITS-1:0] k;           // the window position of the next input word

    assign in0_V_TREADY = !out_valid || out0_V_TREADY;
    assign out0_V_TVALID = out_valid;
    generate
        if (OUT_W > BITS * PE) begin : pad
            assign out0_V_TDATA = {{(OUT_W - BITS * PE){1'b0}}, out_data};
        end else begin : nopad
            assign out0_V_TDATA = out_data;
        end
    endgenerate

    wire in_fire = in0_V_TVALID && in0_V_TREADY;

    // this word's maxima: the input alone at the window's first position, else the larger of the
    // input and the maxima so far
    wire [BITS*PE-1:0] maxima;
    genvar e;
    generate
        for (e = 0; e < PE; e = e + 1) begin : lane
            wire [BITS-1:0] x = in0_V_TDATA[e*BITS +: BITS];
            wire [BITS-1:0] m = best[e*BITS +: BITS];
            wire larger = SIGNED ? ($signed(x) > $signed(m)) : (x > m);  // qapflow: the comparison
            assign maxima[e*BITS +: BITS] = (k == 0 || larger) ? x : m;
        end
    endgenerate

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            out_valid <= 1'b0;
            k <= 0;
            best <= 0;
            out_data <= 0;
        end else begin
            if (out_valid && out0_V_TREADY) out_valid <= 1'b0;
            if (in_fire) begin
                if (k == KERNEL - 1) begin
                    out_data <= maxima;
                    out_valid <= 1'b1;
                    k <= 0;
                end else begin
                    best <= maxima;
                    k <= k + 1;
                end
            end
        end
    end
endmodule
