"""Export: turn a trained model and its preparation into a portable, verifiable model package (ONNX)."""
