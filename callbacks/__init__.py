"""LossLab callbacks: probes that watch what a loss does to a network while it trains."""

__all__: list = []
