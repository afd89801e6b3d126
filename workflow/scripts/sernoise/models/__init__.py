"""Emotion recognition models (paper §7.2: the T-DNN)."""

from sernoise.models.tdnn import TDNN, TDNNConfig

__all__ = ["TDNN", "TDNNConfig"]
