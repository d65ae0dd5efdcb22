"""Torch-free inference: the shipped ONNX graphs run in onnxruntime, everything else in numpy.

:mod:`zerodce.runtime.graphs` loads and checks the graphs shipped in ``zerodce/models/``.
"""
