"""Training DCE-Net and Zero-DCE++: the data, the four non-reference losses and the loop (needs PyTorch)."""
