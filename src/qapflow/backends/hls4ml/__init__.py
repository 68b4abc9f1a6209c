"""The hls4ml backend: hls4ml projects built from the integer model with hls4ml's own layers,
plus qapflow's sparse dense kernel and thresholding layer registered through its extension API."""
