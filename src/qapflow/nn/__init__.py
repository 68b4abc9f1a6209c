"""The quantized jet-tagging network: spec, quantizer schemes, Brevitas builder."""
